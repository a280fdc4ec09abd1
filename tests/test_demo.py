"""The README's first command: `recon run` with no arguments on the shipped inputs."""
import csv
import json
import shutil
from pathlib import Path

import openpyxl
from click.testing import CliRunner

from pipeline.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_demo__recon_run_with_contract_defaults(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "inputs", tmp_path / "inputs")
    monkeypatch.chdir(tmp_path)  # relative default paths, as a user types it
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 1, result.output  # the demo ledger carries planted mistakes
    assert "Traceback" not in result.output
    latest = tmp_path / "outputs" / "latest"
    assert (tmp_path / "outputs" / "recon.duckdb").exists()
    for name in ("summary.csv", "exceptions.csv", "indicators.csv", "run.json", "report.xlsx",
                 "report.html"):
        assert (latest / name).is_file(), name
    with open(latest / "summary.csv", encoding="utf-8-sig") as fh:
        summary = list(csv.DictReader(fh))
    assert [r["allocated"] for r in summary] == ["172800.00", "1037200.00", "61110000.00", "440000.00"]
    assert all(0 < float(r["execution_rate"]) <= 1 for r in summary)
    # the demo's pooled account (记-09-0005): in no allocation line's spent, so the totals say so
    # beside them; before, only the page did, and an auditor read the workbook's balance as left
    book = openpyxl.load_workbook(latest / "report.xlsx")
    for sheet in ("概览", "分配执行"):
        [said] = [[c for c in r if c is not None] for r in book[sheet].iter_rows(values_only=True)
                  if any(isinstance(c, str) and c.startswith("另有未对应分配行的支出") for c in r)]
        assert said[1] == 196237.80 and said[0].endswith("：1 行 lines"), (sheet, said)
    assert "另有未对应分配行的支出" in (latest / "report.html").read_text(encoding="utf-8")
    manifest = json.loads((latest / "run.json").read_text(encoding="utf-8"))
    assert manifest["exit_status"] == 1
    assert {i["kind"] for i in manifest["inputs"]} == {"notice", "ledger"}
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    # the ledger's rows, loaded or quarantined (the notice's four allocation lines were added in)
    [ledger] = [i for i in manifest["inputs"] if i["kind"] == "ledger"]
    assert manifest["counts"]["rows_loaded"] == ledger["rows_loaded"]
    assert manifest["counts"]["rows_loaded"] + manifest["counts"]["rows_quarantined"] == 926
    # a second run loads nothing again and finds the same
    again = CliRunner().invoke(main, ["run"])
    assert again.exit_code == 1
    manifest2 = json.loads(((tmp_path / "outputs" / "latest") / "run.json").read_text(encoding="utf-8"))
    assert {i["action"] for i in manifest2["inputs"]} <= {"skipped"}
    assert manifest2["findings"]["by_rule"] == manifest["findings"]["by_rule"]
    assert set(manifest2["findings"]["by_change"]) == {"persisting"}
