"""The HTML report renders in a real browser: headless Chromium loads it from a file, with the
network off, and the page's own check reports every image decoded and every table present.

Skipped with the reason when Chromium is not installed; under CI=true a missing browser fails
(.ci/run installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rope_suite.reports.render import write
from rope_suite.reports.report import build
from rope_suite.reports.results import load_inputs

from conftest import STRICT
from test_report import check_report, dump, results_doc

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    message = f"no headless browser ({', '.join(BROWSERS)}) on PATH; apt-get install -y chromium"
    if STRICT:
        pytest.fail(f"{message} (required in CI)")
    pytest.skip(message)


def chromium(html: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
               f"--user-data-dir={profile}", "--virtual-time-budget=5000", *extra, html.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def render_check(html: Path, profile: Path) -> tuple[str, str]:
    """(the page's data-render-check after load, the dumped DOM)."""
    proc = chromium(html, profile, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'data-render-check="([^"]*)"', proc.stdout)
    assert found, proc.stdout[:2000]
    return found.group(1), proc.stdout


def assert_renders(html: Path, tmp_path: Path) -> None:
    """Every image decoded (naturalWidth > 0), the tables there, the DOM as written."""
    page = html.read_text()
    images = page.count("<img ")
    tables = page.count("<table>")
    check, dom = render_check(html, tmp_path / "profile")
    got = re.fullmatch(r"images (\d+)/(\d+); tables (\d+); rows (\d+)", check)
    assert got, f"render check did not run: {check!r}"
    decoded, total, n_tables, n_rows = map(int, got.groups())
    assert (decoded, total) == (images, images) and images > 0, check
    assert n_tables == tables and n_rows > tables, check
    assert dom.count('<img src="data:image/png;base64,') == images
    shot = tmp_path / "screenshot.png"
    proc = chromium(html, tmp_path / "profile-shot", "--window-size=1400,2400", f"--screenshot={shot}")
    assert proc.returncode == 0 and shot.stat().st_size > 10_000, proc.stderr[-2000:]


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    results = dump(tmp_path, "results.json", results_doc(evil=True))
    checks = dump(tmp_path, "check.json", [check_report("torch-eager"), check_report("<b>evil</b>")])
    html, _ = write(build(load_inputs([results, checks])), tmp_path / "report")
    assert_renders(html, tmp_path)
