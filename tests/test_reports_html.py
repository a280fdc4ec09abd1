"""report.html: self-contained, escaped, and rendered in a real headless Chromium.

The store is seeded by tests/test_reports.py's `seed_run` (direct inserts, no loaders, no checks).
The browser tests need Debian's `chromium` (installed by .ci/run); without it they are skipped.
"""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.reports import html as html_report
from pipeline.reports import write_reports
from pipeline.reports.common import data_docs_link
from pipeline.store import open_store
from test_reports import LINES, RUN_ID, SCRIPT, rules, seed_run  # noqa: F401  (rules is a fixture)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run does it)")
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def run_dir(tmp_path, rules):  # noqa: F811
    con = open_store(tmp_path / "recon.duckdb")
    seed_run(con)
    out = write_reports(con, RUN_ID, tmp_path / "outputs")
    con.close()
    return out


class _Elements(HTMLParser):
    """Tags and attributes of a page, for counting elements without a DOM library."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _elements(page: str) -> list[tuple[str, dict]]:
    p = _Elements()
    p.feed(page)
    return p.tags


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", *args],
        capture_output=True, text=True, timeout=120)


def _console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def _png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """Width, height and how many distinct byte values its pixel data holds (1 = a blank page)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_html__escapes_input_text(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert ESCAPED_SCRIPT in page
    assert "<script" not in page.lower()  # the page has no script of its own, and none injected
    assert "=HYPERLINK(&#34;http://x&#34;,&#34;y&#34;)" in page
    tags = _elements(page)
    assert not [t for t, _ in tags if t == "script"]


def test_html__self_contained(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    tags = _elements(page)
    assert not [t for t, a in tags if t in ("link", "img", "iframe", "object", "embed")]
    assert not [a for _, a in tags if "src" in a]
    assert "@import" not in page and "url(" not in page
    # every link is to a file of the run or an anchor of the page
    hrefs = [a["href"] for t, a in tags if t == "a"]
    assert hrefs and all(not re.match(r"[a-z]+:", h) for h in hrefs)


def test_html__chart_one_group_per_allocation_line(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    tags = _elements(page)
    groups = [a for t, a in tags if t == "g" and a.get("class") == "bar-group"]
    assert [g["data-purpose"] for g in groups] == [line[1] for line in LINES]
    rects = [a for t, a in tags if t == "rect"]
    assert len(rects) == 2 * len(LINES)
    widths = {(r["class"], float(r["width"])) for r in rects}
    # the largest allocation spans the plot; the overspent line is drawn as "over"
    assert max(w for _, w in widths) == pytest.approx(html_report.CHART_WIDTH - html_report.LABEL_WIDTH
                                                      - html_report.VALUE_WIDTH)
    assert [r["class"] for r in rects].count("over") == 1


def test_html__findings_grouped_by_rule(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    tags = _elements(page)
    rules_in_order = [a["data-rule"] for t, a in tags if "data-rule" in a]
    # errors first, then warnings, by rule id within a severity
    assert rules_in_order == ["CODE_MISMATCH", "INPUT_ROW_INVALID", "OVER_ALLOCATION",
                              "DUPLICATE_ENTRY", "INDICATOR_BEHIND"]
    assert "记-0042" in page and "记-0100" in page
    assert "已豁免 waived" in page
    for status in ("已完成", "未完成", "进度正常", "进度滞后", "需佐证材料"):
        assert status in page


def test_html__more_note_when_a_rule_has_many(tmp_path, rules, monkeypatch):  # noqa: F811
    monkeypatch.setattr(html_report, "FINDINGS_PER_RULE", 1)
    con = open_store(tmp_path / "recon.duckdb")
    seed_run(con)
    page = html_report.render(con, RUN_ID, tmp_path)
    con.close()
    assert "另有 1 条" in page and "1 more" in page  # DUPLICATE_ENTRY has 2


def test_html__data_docs_link(tmp_path):
    assert data_docs_link(tmp_path) is None
    nested = tmp_path / "data_docs" / "local_site"
    nested.mkdir(parents=True)
    (nested / "index.html").write_text("docs", encoding="utf-8")
    assert data_docs_link(tmp_path) == "data_docs/local_site/index.html"
    (tmp_path / "data_docs" / "index.html").write_text("docs", encoding="utf-8")
    assert data_docs_link(tmp_path) == "data_docs/index.html"


def test_html__links_data_docs_of_the_run(tmp_path, rules):  # noqa: F811
    con = open_store(tmp_path / "recon.duckdb")
    seed_run(con)
    run_dir = tmp_path / "outputs" / "runs" / RUN_ID
    (run_dir / "data_docs").mkdir(parents=True)
    (run_dir / "data_docs" / "index.html").write_text("docs", encoding="utf-8")
    write_reports(con, RUN_ID, tmp_path / "outputs")
    con.close()
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert '<a href="data_docs/index.html">' in page


@needs_chromium
def test_html__renders_in_chromium(run_dir, tmp_path):
    url = (run_dir / "report.html").resolve().as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console_messages(dom.stderr) == []
    tags = _elements(dom.stdout)
    assert len([a for t, a in tags if t == "g" and a.get("class") == "bar-group"]) == len(LINES)
    assert [t for t, a in tags if t == "svg" and a.get("id") == "chart"]
    assert "记-0042" in dom.stdout
    # the <script> summary arrived as text: escaped in the DOM, no script element created
    assert ESCAPED_SCRIPT in dom.stdout
    assert not [t for t, _ in tags if t == "script"]


@needs_chromium
def test_html__screenshot(run_dir, tmp_path):
    shot = tmp_path / "report.png"
    url = (run_dir / "report.html").resolve().as_uri()
    result = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", url)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console_messages(result.stderr) == []
    width, height, colours = _png_size_and_colours(shot)
    assert (width, height) == (1280, 2000)
    assert shot.stat().st_size > 50_000 and colours > 50  # a drawn page, not a blank one
