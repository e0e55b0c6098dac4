"""The site in a real headless Chromium: Plotly draws the figures, the table sorts on a header click."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]

# Appended to a copy of index.html: sort by CPU % twice (descending), then record the row order.
SORT_CHECK = """
<script>
window.addEventListener("load", function () {
  var th = Array.from(document.querySelectorAll("table.hosts th")).find(function (h) {
    return h.textContent === "CPU %";
  });
  th.click();
  th.click();
  var hosts = Array.from(document.querySelectorAll("table.hosts tbody td:first-child a"));
  document.body.setAttribute("data-order", hosts.map(function (a) { return a.textContent; }).join(","));
});
</script>
"""


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM after the page's scripts ran (file:// only: the site must work offline)."""
    proc = subprocess.run(
        [CHROMIUM, "--headless=new", "--disable-gpu", "--no-sandbox", f"--user-data-dir={profile}",
         "--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_plotly_draws_every_figure(fleet_site, tmp_path):
    index = dump_dom(fleet_site / "index.html", tmp_path / "profile")
    assert index.count('class="plot-container plotly"') == 2
    assert 'class="main-svg"' in index
    host = dump_dom(fleet_site / "hosts" / "gpu01.html", tmp_path / "profile")
    assert host.count('class="plot-container plotly"') == 6


def test_clicking_a_header_sorts_the_hosts_table(fleet_site, tmp_path):
    site = shutil.copytree(fleet_site, tmp_path / "site")
    html = (site / "index.html").read_text(encoding="utf-8")
    (site / "sort-check.html").write_text(html.replace("</body>", SORT_CHECK + "</body>"), encoding="utf-8")
    dom = dump_dom(site / "sort-check.html", tmp_path / "profile")
    # CPU % descending: gpu01 (50), cpu01 (25), then lost01 (no value: always last).
    assert 'data-order="gpu01,cpu01,lost01"' in dom
