"""The README's first command: `recon run` with no arguments on the shipped inputs."""
import csv
import json
import shutil
from pathlib import Path

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
    manifest = json.loads((latest / "run.json").read_text(encoding="utf-8"))
    assert manifest["exit_status"] == 1
    assert {i["kind"] for i in manifest["inputs"]} == {"notice", "ledger"}
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    # a second run loads nothing again and finds the same
    again = CliRunner().invoke(main, ["run"])
    assert again.exit_code == 1
    manifest2 = json.loads(((tmp_path / "outputs" / "latest") / "run.json").read_text(encoding="utf-8"))
    assert {i["action"] for i in manifest2["inputs"]} <= {"skipped"}
    assert manifest2["findings"]["by_rule"] == manifest["findings"]["by_rule"]
    assert set(manifest2["findings"]["by_change"]) == {"persisting"}
