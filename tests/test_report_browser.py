"""The report of the tiny workflow run (conftest's ``tiny_report``) in a real
browser: headless Chromium opens ``results/report.html``, views every result
of every category as a reader would (tests/report_browser.js), and prints
what loaded; its log holds every console message of the report and of the
pages it shows.

Chromium is Debian's ``chromium``; where it is missing, the test installs it
with apt-get when it runs as root, and is skipped, saying why, elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
# Snakemake's report bundles the Tailwind CDN script, which warns once on load;
# any other console message (an error, an uncaught exception, a failed load)
# fails the test.
KNOWN_MESSAGES = [re.compile(r'"cdn\.tailwindcss\.com should not be used in production')]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium() -> str:
    found = _chromium()
    if found:
        return found
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("no chromium; install Debian's chromium (apt-get install chromium) "
                    "to run the report's browser test")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"],
                ["apt-get", "install", "-y", "chromium"]):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if res.returncode == 0 and _chromium():
            return _chromium()
    tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
    pytest.skip(f"chromium could not be installed with apt-get: {tail[0]}")


def browse(chromium: str, report: Path, tmp_path: Path) -> tuple[dict, list[str]]:
    """Run tests/report_browser.js on ``report``; its summary and the
    console messages Chromium logged."""
    harness = tmp_path / "harness.html"
    harness.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        f'<iframe id="report" src="{report.as_uri()}" style="width:1400px;height:900px">'
        '</iframe><pre id="prh-result"></pre>'
        f'<script src="{(HERE / "report_browser.js").as_uri()}"></script></body></html>')
    res = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'profile'}", "--allow-file-access-from-files",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=600000", "--dump-dom",
         harness.as_uri()], capture_output=True, text=True, timeout=600)
    m = re.search(r'<pre id="prh-result">(.*?)</pre>', res.stdout, re.S)
    assert m and m.group(1), f"no summary from the browser:\n{res.stderr[-3000:]}"
    import html

    summary = json.loads(html.unescape(m.group(1)))
    console = [ln for ln in res.stderr.splitlines() if ":CONSOLE" in ln]
    return summary, console


def test_every_figure_and_table_of_the_report_loads_without_console_errors(
        tiny_run, tiny_report, chromium, tmp_path):
    summary, console = browse(chromium, tiny_report, tmp_path)
    assert summary["problems"] == [], summary["problems"]
    assert summary["app"]
    unexpected = [ln for ln in console if not any(k.search(ln) for k in KNOWN_MESSAGES)]
    assert unexpected == [], "\n".join(unexpected)

    # every result was shown (images and pages) or offered as a download (TSV)
    seen = set(summary["viewed"]) | set(summary["downloads"])
    assert len(seen) == summary["results"]
    assert not [k for k in seen if k.startswith("unknown")], seen
    for path, v in summary["viewed"].items():
        assert v["ok"], (path, v)
        if path.endswith(".png"):
            assert v["tag"] == "img" and v["width"] > 100, (path, v)
        else:
            assert path.endswith(".html") and v["tag"] == "iframe", (path, v)
    # every figure and every model's scorecard figure
    figures = {p for p in summary["viewed"] if p.endswith(".png")}
    assert figures == {str(p.relative_to(tiny_run)) for d in ("plots", "scorecards")
                       for p in (tiny_run / "results/emoji" / d).rglob("*.png")}
    assert summary["categories"][0] == "0. Findings"

    # the findings page: one list item per statement of findings.md
    md = (tiny_run / "results/emoji/findings.md").read_text()
    page = summary["pages"]["results/emoji/report/findings.html"]
    assert page["items"] == len([ln for ln in md.splitlines() if ln.startswith("- ")])

    # each table page holds its TSV's rows, sorts them and filters them
    for name, tsv in [("alignment", "alignment.tsv"), ("aggregates", "aggregates.tsv"),
                      ("intervals", "statistics/intervals.tsv"),
                      ("comparisons", "statistics/comparisons.tsv"),
                      ("trend", "statistics/trend.tsv")]:
        page = summary["pages"][f"results/emoji/report/{name}.html"]
        lines = (tiny_run / "results/emoji" / tsv).read_text().splitlines()
        assert page["columns"] == ["line"] + lines[0].split("\t"), name
        assert page["rows"] == len(lines) - 1, name
        if page["rows"]:
            if name in ("alignment", "aggregates", "intervals", "comparisons"):
                sort = page["numericSort"]  # p_bh or score, with empty cells last
                assert sort["ascending"] and sort["descending"], (name, sort)
            assert page["ascending"] == list(range(2, len(lines) + 1)), name
            assert page["descending"] == page["ascending"][::-1], name
            assert 1 <= page["filtered"] <= page["rows"], name
    cards = summary["pages"]["results/emoji/report/scorecards.html"]
    assert cards["rows"] == sum(
        len((tiny_run / f"results/emoji/scorecards/{m}.tsv").read_text().splitlines()) - 1
        for m in ("efficientnet_lite0", "minilm_l6", "glove_6b_50d"))
