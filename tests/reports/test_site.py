"""The static site, built from a real warehouse (synthetic documents spooled and ingested for real)."""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta
from pathlib import Path

import pytest

import reports.site
from fleetscope.warehouse import connect, ingest_pending
from reports import build_site
from tests.docfactory import document, gpu, gpu_process, ok, spool_run, unreachable
from tests.reports.conftest import LOST_MESSAGE, NOW, RUNS
from tests.reports.pages import SCRIPT_SRC, hosts_table, html_files, tables


def build(data_dir: Path, out: Path, now=NOW, **kwargs) -> Path:
    with contextlib.closing(connect(data_dir)) as con:
        return build_site(con, out, now=now, **kwargs)


def test_index_has_a_row_and_a_working_link_per_host(fleet_site):
    index = fleet_site / "index.html"
    html = index.read_text(encoding="utf-8")
    assert set(hosts_table(index)) == {"cpu01", "gpu01", "lost01"}
    for host in ("cpu01", "gpu01", "lost01"):
        assert f'href="hosts/{host}.html"' in html
        assert (fleet_site / "hosts" / f"{host}.html").is_file()


def test_index_row_shows_latest_state_of_each_host(fleet_site):
    rows = hosts_table(fleet_site / "index.html")
    gpu01, cpu01, lost01 = rows["gpu01"], rows["cpu01"], rows["lost01"]
    assert gpu01["Status"] == "ok"
    assert gpu01["Last seen"] == "2 min ago"
    assert gpu01["OS"] == "Debian GNU/Linux 12 (bookworm)"
    assert gpu01["CPU cores"] == "64"
    assert gpu01["CPU %"] == "50.0"  # from the jiffies of the last two samples
    assert gpu01["Memory used / total"] == "120.0 GiB / 512.0 GiB"
    assert gpu01["GPUs busy / total"] == "1 / 2"  # GPU 1 holds memory for bob but is idle
    assert gpu01["Users on GPUs"] == "alice, bob"
    # cpu01 timed out at the middle run: its last two samples are ten minutes apart, still exact.
    assert cpu01["CPU %"] == "25.0"
    assert cpu01["GPUs busy / total"] == ""
    # lost01 never answered: listed all the same, with why.
    assert lost01["Status"] == f"unreachable {LOST_MESSAGE}"
    assert lost01["Last seen"] == "never"


def test_index_summary_and_fleet_figures(fleet_site):
    html = (fleet_site / "index.html").read_text(encoding="utf-8")
    assert "<b>2</b> / 3 hosts up" in html
    assert "<b>1</b> / 2 GPUs busy" in html
    assert html.count('class="figure"') == 2  # fleet timeline and GPU heat-map
    assert '"name":"GPU utilization (mean)"' in html


def test_host_page_shows_gpu_processes_timelines_inventory_and_status(fleet_site):
    html = (fleet_site / "hosts" / "gpu01.html").read_text(encoding="utf-8")
    processes, inventory, status = tables(html)
    assert [(p["GPU"], p["User"], p["PID"], p["Command"], p["GPU memory"]) for p in processes] == [
        ("0", "alice", "4242", "python train.py --epochs 10", "38.0 GiB"),
        ("1", "bob", "777", "jupyter-kernel", "1.0 GiB"),
    ]
    # CPU, memory, then GPU utilization, memory, temperature, power: one trace per GPU.
    assert html.count('class="figure"') == 6
    for title in ("CPU use", "Memory used", "GPU utilization", "GPU memory used", "GPU temperature",
                  "GPU power"):
        assert f'"text":"{title}"' in html
    assert html.count('"name":"GPU 1"') == 4
    assert '<tr><th>GPU models</th><td>NVIDIA H100 80GB HBM3</td></tr>' in html
    assert [s["Status"] for s in status] == ["ok", "ok", "ok"]
    assert 'src="../plotly.min.js"' in html


def test_power_timeline_uses_the_energy_counter(fleet_data, tmp_path):
    # GPU 0 reads 380 W, but used 300 s x 400 W between runs: the exact mean wins where a previous sample
    # exists. One-minute buckets (timeline_hours=1) keep every run its own point.
    index = build(fleet_data, tmp_path / "site", settings={"timeline_hours": 1})
    html = (index.parent / "hosts" / "gpu01.html").read_text(encoding="utf-8")
    assert '"name":"GPU 0","x":["2026-11-23 09:00:00","2026-11-23 09:05:00","2026-11-23 09:10:00"],' \
           '"y":[380.0,400.0,400.0]' in html


def test_host_that_was_only_ever_unreachable_has_a_page(fleet_site):
    html = (fleet_site / "hosts" / "lost01.html").read_text(encoding="utf-8")
    assert "No samples from this host" in html
    assert "No inventory" in html
    assert LOST_MESSAGE in html
    (status,) = [t for t in tables(html) if t and "Status" in t[0]]
    assert len(status) == len(RUNS) and {s["Status"] for s in status} == {"unreachable"}
    assert "plotly.min.js" not in html  # no figures, no need to load it


def test_plotly_js_is_written_once_and_nothing_is_fetched_online(fleet_site):
    assert [p.relative_to(fleet_site).as_posix() for p in fleet_site.rglob("plotly*")] == ["plotly.min.js"]
    assert (fleet_site / "plotly.min.js").stat().st_size > 1_000_000
    for page in html_files(fleet_site):
        html = page.read_text(encoding="utf-8")
        prefix = "../" if page.parent.name == "hosts" else ""
        for src in SCRIPT_SRC.findall(html):
            assert src in (f"{prefix}plotly.min.js", f"{prefix}sort.js"), (page, src)
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), page


def test_hostile_host_text_is_escaped_everywhere(tmp_path):
    data, site = tmp_path / "data", tmp_path / "site"
    evil_host, escaping_host = "<script>alert(1)</script>", "../../escape"
    evil_user = "<img src=x onerror=alert(2)>"
    evil_command = "python -c '</script><!--' \u2028 & done"
    for i in range(2):
        at = RUNS[i]
        procs = [gpu_process(1, evil_user, evil_command)]
        spool_run(data, at, [
            ok(evil_host, at, document(evil_host, at, gpus=[gpu(0, util=50, processes=procs)])),
            unreachable(escaping_host, at, message="<b>bold</b> & </script>"),
        ])
    assert not ingest_pending(data).rejected
    build(data, site)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "site"]  # nothing written outside
    pages = html_files(site)
    assert len(pages) == 3 and all(p.resolve().is_relative_to(site.resolve()) for p in pages)
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;/script&gt;" in index
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for raw in ("alert(1)</script>", "<script>alert", "<img", "<b>bold", "</script><!--", "<!--"):
            assert raw not in html, (page.name, raw)
        # U+2028 is plain text in HTML, but ends a line in older JavaScript: never raw inside a script.
        assert not any("\u2028" in s for s in re.findall(r"<script>(.*?)</script>", html, re.S))
        # Only the page's own script elements: plotly (when it has figures), sort.js, the figures.
        assert html.count("<script") == html.count("</script>") <= 3
    host_page = next(p for p in pages if "alert" in p.name)
    processes = tables(host_page.read_text(encoding="utf-8"))[0]
    assert (processes[0]["User"], processes[0]["Command"]) == (evil_user, " ".join(evil_command.split()))


def test_empty_warehouse_renders_a_page_that_says_so(tmp_path):
    index = build(tmp_path / "no-data-yet", tmp_path / "site")
    html = index.read_text(encoding="utf-8")
    assert "No runs yet" in html
    assert list((tmp_path / "site" / "hosts").iterdir()) == []


def test_fleet_that_never_answered_lists_its_hosts_without_figures(tmp_path):
    spool_run(tmp_path / "data", RUNS[0], [unreachable("lost01", RUNS[0], LOST_MESSAGE)])
    ingest_pending(tmp_path / "data")
    index = build(tmp_path / "data", tmp_path / "site")
    assert hosts_table(index)["lost01"]["Status"] == f"unreachable {LOST_MESSAGE}"
    html = index.read_text(encoding="utf-8")
    assert "No samples in the last 168 hours" in html
    assert "plotly.min.js" not in html
    assert (tmp_path / "site" / "hosts" / "lost01.html").is_file()


def test_rebuild_swaps_the_whole_site_and_a_failed_build_keeps_the_old_one(fleet_data, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "stale.html").write_text("old")
    build(fleet_data, site)
    assert not (site / "stale.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no staging leftovers

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(reports.site, "_render", broken)
    with pytest.raises(RuntimeError):
        build(fleet_data, site)
    assert (site / "hosts" / "gpu01.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_report_section_of_the_settings_file_is_accepted_as_is(fleet_data, tmp_path):
    # fleetscope.cli passes dict(settings.values["report"]): out_dir is the caller's, the rest is ours.
    section = {"out_dir": "elsewhere", "busy_threshold_pct": 95.0, "timeline_hours": 1}
    index = build(fleet_data, tmp_path / "site", settings=section)
    assert hosts_table(index)["gpu01"]["GPUs busy / total"] == "0 / 2"
    assert "above 95.0 %" in index.read_text(encoding="utf-8")
    assert not (tmp_path / "elsewhere").exists()
    with pytest.raises(ValueError, match="busy_pct"):
        build(fleet_data, tmp_path / "site", settings={"busy_pct": 1})


def test_timelines_reach_back_from_the_newest_data_not_the_clock(fleet_data, tmp_path):
    index = build(fleet_data, tmp_path / "site", now=NOW + timedelta(days=30), settings={"timeline_hours": 1})
    html = index.read_text(encoding="utf-8")
    assert "30.0 d ago" in html
    assert '"x":["2026-11-23 09:00:00","2026-11-23 09:05:00","2026-11-23 09:10:00"]' in html
