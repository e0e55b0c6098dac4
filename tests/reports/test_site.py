"""The static site, built from a real warehouse (synthetic documents spooled and ingested for real)."""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta, timezone
from pathlib import Path

import pytest

import reports.site
from fleetscope.warehouse import connect, ingest_pending
from reports import build_site
from tests.docfactory import document, gpu, gpu_process, ok, spool_run, unreachable
from tests.reports.conftest import LOST_MESSAGE, NOW, RUNS
from tests.reports.pages import SCRIPT_SRC, figure, hosts_table, html_files, inventory, page_data, table


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
    assert gpu01["CPUs"] == "64"
    assert gpu01["CPU %"] == "50.0"  # from the jiffies of the last two samples
    assert gpu01["Memory used / total"] == "120.0 GiB / 512.0 GiB"
    assert (gpu01["GPUs busy"], gpu01["GPUs"]) == ("1", "2")  # GPU 1 holds memory for bob but is idle
    assert gpu01["Users on GPUs"] == "alice, bob"
    # cpu01 timed out at the middle run: its last two samples are ten minutes apart, still exact.
    assert cpu01["CPU %"] == "25.0"
    assert (cpu01["GPUs busy"], cpu01["GPUs"]) == ("", "0")
    # lost01 never answered: listed all the same, with why.
    assert lost01["Status"] == f"unreachable {LOST_MESSAGE}"
    assert lost01["Last seen"] == "never"


def test_index_summary_and_fleet_figures(fleet_site):
    html = (fleet_site / "index.html").read_text(encoding="utf-8")
    assert "<b>2</b> / 3 hosts up" in html
    assert "GPUs: <b>1</b> busy · 0 idle · 1 in maintenance · 2 total" in html  # GPU 1 (held) is in maintenance
    assert "<b>2</b> users on GPUs" in html
    assert "latest run 2026-11-23 09:10 UTC (2 min ago)" in html
    # GPUs now (host x GPU), the fleet over a range, the host x time heat-map.
    assert html.count('class="figure"') == 3
    assert [f["id"] for f in page_data(html)["figures"]] == ["figure-gpus-now", "figure-fleet", "figure-heatmap"]
    # 1,000-host review: the fleet chart was 50,000 px down the page; a line at the top leads to each section
    contents = re.search(r'<p class="note contents">(.*?)</p>', html, re.S).group(1)
    anchors = re.findall(r'href="#([\w-]+)"', contents)
    assert anchors == ["hosts", "gpus-now", "utilization", "by-host"]
    assert all(f'<h2 id="{a}">' in html for a in anchors)


def test_a_range_longer_than_the_hourly_rollups_are_kept_says_so(fleet_data, tmp_path):
    """Review (retention replay): with rollup.hourly_days at 20, the "last 30 d" chart and the users page's
    week x hour map of "the last year" showed 20 days without a word. Their captions now say how long the
    hourly rollups are kept; the default (365) leaves them as they were."""
    from reports import build_site

    with contextlib.closing(connect(fleet_data)) as con:
        short = build_site(con, tmp_path / "short", now=NOW, settings={"hourly_days": 20}).parent
        forever = build_site(con, tmp_path / "forever", now=NOW, settings={"hourly_days": 0}).parent

    def titles(site):
        fleet = figure((site / "index.html").read_text("utf-8"), "fleet")
        return [r["layout"]["title"]["text"] for r in fleet["ranges"]]

    assert "(hourly rollups, per hour)" in titles(short)[1]  # 7 d: within the 20 days
    assert "(hourly rollups, kept 20 d: rollup.hourly_days, per 2 hours)" in titles(short)[2]
    users = (short / "users.html").read_text("utf-8")
    assert "of the last year: 20 days, as long as they are kept" in " ".join(users.split())
    assert "(hourly rollups, per 2 hours)" in titles(forever)[2]
    assert "as long as they are kept" not in (forever / "users.html").read_text("utf-8")


def test_gpu_heatmap_now_has_a_cell_per_gpu_that_links_to_its_host(fleet_site):
    fig = figure((fleet_site / "index.html").read_text(encoding="utf-8"), "gpus-now")
    (trace,) = fig["data"]
    assert trace["y"] == ["gpu01"] and trace["x"] == ["0", "1"]
    assert trace["z"] == [[92.0, 0.0]]
    assert trace["text"][0][0] == "gpu01 · GPU 0<br>92 % (busy)<br>42.0 / 80 GiB<br>alice"
    assert fig["links"] == ["hosts/gpu01.html"]


def test_fleet_ranges_come_from_the_raw_hourly_and_daily_tiers(fleet_site):
    html = (fleet_site / "index.html").read_text(encoding="utf-8")
    fig, shared_x = figure(html, "fleet"), page_data(html)["x"]
    assert [r["label"] for r in fig["ranges"]] == ["24 h", "7 d", "30 d", "1 y"] and fig["selected"] == 0
    for i, r in enumerate(fig["ranges"]):  # each range's traces share one x array of the page
        assert {t.pop("xs") for t in r["data"]} == {f"r{i}"}
        for t in r["data"]:
            t["x"] = shared_x[f"r{i}"]
    day, week, month, year = ({t["name"]: t for t in r["data"]} for r in fig["ranges"])
    assert "raw samples, per 3 min" in fig["ranges"][0]["layout"]["title"]["text"]
    assert "hourly rollups, per hour" in fig["ranges"][1]["layout"]["title"]["text"]
    assert "hourly rollups, per 2 hours" in fig["ranges"][2]["layout"]["title"]["text"]
    assert "daily rollups, per day" in fig["ranges"][3]["layout"]["title"]["text"]
    # Raw: three runs in three-minute buckets; GPU utilization is the mean over both GPUs per run.
    assert day["GPU utilization"]["x"] == ["2026-11-23 09:00", "2026-11-23 09:03", "2026-11-23 09:09"]
    assert day["GPU utilization"]["y"] == [45.0, 45.5, 46.0]
    assert day["GPUs busy"]["y"] == [1.0, 1.0, 1.0]
    # Rollups: one hour, one day. Time-weighted: the first samples stand for no time, so the hour's GPU
    # utilization is the mean of the last two runs.
    assert week["GPU utilization"]["x"] == ["2026-11-23 09:00"]
    assert month["GPU utilization"]["x"] == ["2026-11-23 08:00"]  # two-hour buckets
    assert week["GPU utilization"]["y"] == pytest.approx([45.75])
    assert year["GPU utilization"]["x"] == ["2026-11-23 00:00"]
    assert year["GPU utilization"]["y"] == pytest.approx([45.75])
    # GPU 0 was active for the 600 s the hour's samples stand for, GPU 1 for none: one GPU busy, as the raw
    # range says. Over the whole hour (which is still being collected) it would read 1/6: a drop at the
    # right edge of every rollup range that was not there.
    assert week["GPUs busy"]["y"] == pytest.approx([1.0]) and year["GPUs busy"]["y"] == pytest.approx([1.0])
    assert year["CPU use"]["y"] == pytest.approx([50 * 64 / 72 + 25 * 8 / 72], rel=1e-3)


def test_host_page_shows_gpus_processes_timelines_inventory_and_status(fleet_site):
    html = (fleet_site / "hosts" / "gpu01.html").read_text(encoding="utf-8")
    gpus = table(html, "gpus")
    assert [(g["GPU"], g["Utilization %"], g["Memory used / total"], g["Temperature °C"], g["Power W / limit"],
             g["Clocks SM / memory MHz"], g["MIG"], g["Users"]) for g in gpus] == [
        ("0", "92", "42.0 GiB / 80.0 GiB", "62", "380 / 700", "1980 / 2619", "off", "alice"),
        ("1", "0", "2.0 GiB / 80.0 GiB", "35", "70 / 700", "1980 / 2619", "off", "bob"),
    ]
    processes = table(html, "processes")
    assert [(p["GPU"], p["User"], p["PID"], p["Command"], p["Started"], p["GPU memory"]) for p in processes] == [
        ("0", "alice", "4242", "python train.py --epochs 10", "2026-11-23 08:00", "38.0 GiB"),
        ("1", "bob", "777", "jupyter-kernel", "", "1.0 GiB"),  # a collector that did not send it
    ]
    assert 'title="running for 70 min at the sample">2026-11-23 08:00' in html  # at 09:10
    # GPU utilization, memory, temperature, power, SM clock (one trace per GPU), then CPU and memory.
    figures = page_data(html)["figures"]
    assert [f["layout"]["title"]["text"] for f in figures] == [
        "GPU utilization", "GPU memory used", "GPU temperature", "GPU power", "GPU SM clock",
        "CPU use", "Memory used"]
    assert html.count('class="figure"') == 7
    assert html.count('"name":"GPU 1"') == 5
    assert inventory(html)["GPU models"] == "NVIDIA H100 80GB HBM3"
    assert inventory(html)["NVIDIA driver"] == "580.65.06"
    # Three ok runs are one period, still going on.
    assert [(s["Status"], s["From (UTC)"], s["Until (UTC)"], s["Runs"]) for s in table(html, "status-history")] \
        == [("ok", "2026-11-23 09:00:00", "now", "3")]
    assert 'src="../plotly.min.js"' in html


def test_status_history_is_made_of_periods_with_their_reason(fleet_site):
    html = (fleet_site / "hosts" / "cpu01.html").read_text(encoding="utf-8")
    periods = table(html, "status-history")
    assert [(p["Status"], p["From (UTC)"], p["Until (UTC)"], p["Runs"], p["Message"]) for p in periods] == [
        ("ok", "2026-11-23 09:10:00", "now", "1", ""),
        ("timeout", "2026-11-23 09:05:00", "2026-11-23 09:10:00", "1", "no result in time"),
        ("ok", "2026-11-23 09:00:00", "2026-11-23 09:05:00", "1", ""),
    ]
    assert "No GPUs: NVML library not found" in html
    assert [f["layout"]["title"]["text"] for f in page_data(html)["figures"]] == ["CPU use", "Memory used"]


def test_host_page_shows_who_used_its_gpus(fleet_site):
    rows = {r["User"]: r for r in table((fleet_site / "hosts" / "gpu01.html").read_text(encoding="utf-8"),
                                        "host-users")}
    assert set(rows) == {"alice", "bob"}
    # alice's GPU was active for the two 300 s intervals of the day, bob's held for the last one.
    assert rows["alice"]["Active GPU-h, 7 d"] == "0.17" and rows["alice"]["Idle-held GPU-h, 7 d"] == "0.00"
    assert rows["bob"]["Active GPU-h, 1 y"] == "0.00" and rows["bob"]["Idle-held GPU-h, 1 y"] == "0.08"
    assert rows["alice"]["kWh, 30 d"] == "0.07"  # 400 W x 600 s


def test_power_timeline_uses_the_energy_counter(fleet_data, tmp_path):
    # GPU 0 reads 380 W, but used 300 s x 400 W between runs: the exact mean wins where a previous sample
    # exists. One-minute buckets (timeline_hours=1) keep every run its own point.
    index = build(fleet_data, tmp_path / "site", settings={"timeline_hours": 1})
    html = (index.parent / "hosts" / "gpu01.html").read_text(encoding="utf-8")
    data = page_data(html)
    assert data["x"] == {"t": ["2026-11-23 09:00", "2026-11-23 09:05", "2026-11-23 09:10"]}
    (power,) = [f for f in data["figures"] if f["layout"]["title"]["text"] == "GPU power"]
    assert [(t["name"], t["xs"], t["y"]) for t in power["data"]] == [
        ("GPU 0", "t", [380.0, 400.0, 400.0]), ("GPU 1", "t", [70.0, 70.0, 70.0])]


def test_host_that_was_only_ever_unreachable_has_a_page(fleet_site):
    html = (fleet_site / "hosts" / "lost01.html").read_text(encoding="utf-8")
    assert "No samples from this host" in html
    assert "No inventory" in html
    assert LOST_MESSAGE in html
    (period,) = table(html, "status-history")
    assert (period["Status"], period["Runs"], period["Until (UTC)"]) == ("unreachable", str(len(RUNS)), "now")
    assert "plotly.min.js" not in html  # no figures, no need to load it


def test_plotly_js_is_written_once_and_nothing_is_fetched_online(fleet_site):
    assert [p.relative_to(fleet_site).as_posix() for p in fleet_site.rglob("plotly*")] == ["plotly.min.js"]
    assert (fleet_site / "plotly.min.js").stat().st_size > 1_000_000
    for page in html_files(fleet_site):
        html = page.read_text(encoding="utf-8")
        prefix = "../" if page.parent.name == "hosts" else ""
        for src in SCRIPT_SRC.findall(html):
            assert src in (f"{prefix}plotly.min.js", f"{prefix}report.js"), (page, src)
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

    assert sorted(p.name for p in tmp_path.iterdir()) == [".site.lock", "data", "site"]  # nothing else written
    pages = html_files(site)
    assert len(pages) == 5 and all(p.resolve().is_relative_to(site.resolve()) for p in pages)
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;/script&gt;" in index
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for raw in ("alert(1)</script>", "<script>alert", "<img", "<b>bold", "</script><!--", "<!--"):
            assert raw not in html, (page.name, raw)
        # U+2028 is plain text in HTML, but ends a line in older JavaScript: never raw inside a script.
        assert not any("\u2028" in s for s in re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S))
        # Only the page's own script elements: plotly (when it has figures), report.js, the figure data.
        assert html.count("<script") == html.count("</script>") <= 3
    host_page = next(p for p in pages if "alert" in p.name)
    processes = table(host_page.read_text(encoding="utf-8"), "processes")
    assert (processes[0]["User"], processes[0]["Command"]) == (evil_user, " ".join(evil_command.split()))


def test_empty_warehouse_renders_a_page_that_says_so(tmp_path):
    index = build(tmp_path / "no-data-yet", tmp_path / "site")
    html = index.read_text(encoding="utf-8")
    assert "No runs yet" in html
    assert list((tmp_path / "site" / "hosts").iterdir()) == []


def test_fleet_that_never_answered_lists_its_hosts_without_figures(tmp_path):
    spool_run(tmp_path / "data", RUNS[0], [unreachable("lost01", RUNS[0], LOST_MESSAGE),
                                           unreachable("lost02", RUNS[0], LOST_MESSAGE)])
    ingest_pending(tmp_path / "data")
    index = build(tmp_path / "data", tmp_path / "site")
    assert hosts_table(index)["lost01"]["Status"] == f"unreachable {LOST_MESSAGE}"
    html = index.read_text(encoding="utf-8")
    assert "0 of 2 hosts fresh" in html
    assert "No samples in the last year" in html
    assert "plotly.min.js" not in html
    assert (tmp_path / "site" / "hosts" / "lost01.html").is_file()


def test_rebuild_swaps_the_site_sweeps_a_killed_build_and_a_failed_build_keeps_the_old(fleet_data, tmp_path,
                                                                                         monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / ".fleetscope-site").write_text("")  # a site fleetscope wrote: all of it is replaced
    (site / "stale.html").write_text("old")
    killed = tmp_path / ".site.new-k1ll3d"  # what a build killed half-way leaves behind
    killed.mkdir()
    (killed / "plotly.min.js").write_text("x" * 1000)
    build(fleet_data, site)
    assert not (site / "stale.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".site.lock", "site"]  # no staging leftovers

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(reports.site, "_render", broken)
    with pytest.raises(RuntimeError):
        build(fleet_data, site)
    assert (site / "hosts" / "gpu01.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".site.lock", "site"]


def test_report_section_of_the_settings_file_is_accepted_as_is(fleet_data, tmp_path):
    # fleetscope.cli passes dict(settings.values["report"]): out_dir is the caller's, the rest is ours.
    section = {"out_dir": "elsewhere", "busy_threshold_pct": 95.0, "timeline_hours": 1}
    index = build(fleet_data, tmp_path / "site", settings=section)
    assert (hosts_table(index)["gpu01"]["GPUs busy"], hosts_table(index)["gpu01"]["GPUs"]) == ("0", "2")
    assert "above 95.0 %" in index.read_text(encoding="utf-8")
    assert not (tmp_path / "elsewhere").exists()
    with pytest.raises(ValueError, match="busy_pct"):
        build(fleet_data, tmp_path / "site", settings={"busy_pct": 1})


def test_every_report_key_of_the_settings_file_is_understood(fleet_data, tmp_path):
    from fleetscope.settings import DEFAULTS

    # What fleetscope.cli passes: the [report] section with its defaults, plus rollup.held_mem_mib,
    # rollup.max_interval_s and rollup.hourly_days.
    section = {**DEFAULTS["report"], **{k: DEFAULTS["rollup"][k] for k in ("held_mem_mib", "max_interval_s",
                                                                           "hourly_days")}}
    # out_dir and user_groups are the caller's (the site's folder; the file build_site's user_groups comes from)
    ignored = reports.site.IGNORED_SETTINGS
    assert ignored == {"out_dir", "user_groups"} and ignored <= set(section)
    assert set(section) - ignored == set(reports.site.DEFAULT_SETTINGS)
    assert {k: v for k, v in section.items() if k not in ignored} == reports.site.DEFAULT_SETTINGS
    assert build(fleet_data, tmp_path / "site", settings=section).is_file()


def test_timelines_reach_back_from_the_newest_data_not_the_clock(fleet_data, tmp_path):
    index = build(fleet_data, tmp_path / "site", now=NOW + timedelta(days=30), settings={"timeline_hours": 1})
    html = index.read_text(encoding="utf-8")
    assert "30.0 d ago" in html
    host = (index.parent / "hosts" / "gpu01.html").read_text(encoding="utf-8")
    assert page_data(host)["x"]["t"] == ["2026-11-23 09:00", "2026-11-23 09:05", "2026-11-23 09:10"]


def test_the_first_runs_fleet_chart_spans_an_hour_not_a_millisecond(tmp_path):
    """New-user review: after the first collect, the fleet chart's one point sat on an axis from
    00:41:59.999 to 00:42:00.001. A range with one point now spans half an hour either side of it."""
    data, at = tmp_path / "data", RUNS[0]
    spool_run(data, at, [ok("n01", at, document("n01", at))])
    assert not ingest_pending(data).rejected
    with contextlib.closing(connect(data)) as con:
        site = build_site(con, tmp_path / "site", now=at + timedelta(minutes=1)).parent
    fleet = figure((site / "index.html").read_text(encoding="utf-8"), "fleet")
    raw = fleet["ranges"][0]  # last 24 h, raw samples: the run's one point
    assert raw["layout"]["xaxis"]["range"] == ["2026-11-23 08:30", "2026-11-23 09:30"], raw["layout"]["xaxis"]


def test_host_charts_break_their_lines_where_the_host_was_not_sampled():
    """A host down from 09:05 to 12:00 drew a straight line across those hours, as if it had been sampled:
    each chart now breaks there (a time without data on the shared axis), and nowhere else."""
    from datetime import datetime

    from reports import figures

    t = [datetime(2026, 11, 23, 9, 0), datetime(2026, 11, 23, 9, 5), datetime(2026, 11, 23, 12, 0),
         datetime(2026, 11, 23, 12, 5)]
    host = [{"ts": ts, "cpu_pct": 50.0, "mem_used_gib": 8.0, "mem_total_gib": 64.0} for ts in t]
    gpu = [{"ts": ts, "gpu_index": 0, "util_pct": 90, "mem_used_gib": 1.0, "temperature_c": 40, "power_w": 300,
            "clock_sm_mhz": 1980} for ts in t]
    x, figs = figures.host_figures(host, gpu, gap_s=1200)
    assert x == ["2026-11-23 09:00", "2026-11-23 09:05", "2026-11-23 10:32:30", "2026-11-23 12:00", "2026-11-23 12:05"]
    for fig in figs:
        assert fig["data"][0]["y"][2] is None and None not in fig["data"][0]["y"][:2] + fig["data"][0]["y"][3:]
    assert len(figures.host_figures(host, gpu, gap_s=4 * 3600)[0]) == 4  # within the bound: no break
    # a sample alone between two breaks is a dot: a line needs two points
    lone = [host[0], {**host[0], "ts": t[2]}, {**host[0], "ts": t[2].replace(hour=15)}]
    _, figs = figures.host_figures(lone, [], gap_s=1200)
    (cpu,) = figs[0]["data"]
    assert cpu["y"] == [50.0, None, 50.0, None, 50.0] and cpu["mode"] == "lines+markers"


def test_many_hosts_share_the_rows_of_the_gpu_map_and_every_cell_keeps_its_host():
    """Past 40 hosts the GPUs-now map puts several hosts on a row (at 1,000 hosts it was 18,000 px high): each
    GPU is in one cell, hovering and linking to its own host, with a free column between hosts."""
    from reports import figures

    def gpus(hosts: int, count: int) -> list:
        return [{"host": f"n{h:04d}", "gpu_index": i, "util_pct": float(h % 100), "mem_used_bytes": None,
                 "mem_total_bytes": None, "users": [], "busy": False, "unmeasured": False, "util": 1.0}
                for h in range(hosts) for i in range(count) if (h, i) != (7, 1)]  # n0007 lacks its GPU 1

    assert figures.hosts_per_row(40, 8) == 1 and figures.hosts_per_row(41, 8) == 2
    assert figures.hosts_per_row(1000, 8) == 11 and figures.hosts_per_row(1000, 1) == 40
    assert figures.hosts_per_row(5000, 200) == 1  # a row could not hold two such hosts: one a row
    few = figures.gpu_now_heatmap(gpus(40, 2), {"n0003": "hosts/n0003.html"})
    assert few["per_row"] == 1 and few["links"][3] == "hosts/n0003.html" and few["data"][0]["x"] == ["0", "1"]
    files = {f"n{h:04d}": f"hosts/n{h:04d}.html" for h in range(1000)}
    fig = figures.gpu_now_heatmap(gpus(1000, 8), files)
    (trace,) = fig["data"]
    assert fig["per_row"] == 11 and len(trace["y"]) == len(fig["links"]) == 91  # ceil(1000 / 11)
    margin = fig["layout"]["margin"]
    assert trace["y"][:2] == ["n0000", "n0011"] and fig["layout"]["height"] - margin["t"] - margin["b"] == 18 * 91
    assert len(trace["x"]) == len(set(trace["x"])) == 11 * 9 - 1
    seen = {}
    for i, (z_row, text_row, link_row) in enumerate(zip(trace["z"], trace["text"], fig["links"])):
        assert len(z_row) == len(text_row) == 98 and len(link_row) == (11 if i < 90 else 1000 - 90 * 11)
        for k, text in enumerate(text_row):
            if k % fig["span"] == 8:  # the free column between two hosts
                assert text == "" and z_row[k] is None
            elif text:
                host, index = text.split("<br>")[0].split(" · GPU ")
                seen[(host, int(index))] = (i, k)  # report.js: the cell's link is its row's [k // span]
                assert link_row[k // fig["span"]] == f"hosts/{host}.html" and z_row[k] == float(int(host[1:]) % 100)
    assert len(seen) == 8000 - 1 and ("n0007", 1) not in seen
    assert seen[("n0012", 3)] == (1, 9 + 3)  # the second host of the second row, its fourth column
    assert fig["span"] == 9 and fig["links"][0][(9 + 1) // 9] == "hosts/n0001.html"  # a missing GPU's cell too
    # a host whose GPUs gave no index (a row of its own names it when one host a row): its first cell does
    mig = gpus(45, 2) + [dict(gpus(1, 1)[0], host="n9999", gpu_index=None)]
    trace, grey = figures.gpu_now_heatmap(mig, {})["data"]
    assert trace["text"][-1][3] == "n9999 · its GPUs gave no index" and trace["z"][-1][3] is None
    assert grey["z"][-1][3] == 0 and grey["text"][-1][3] == trace["text"][-1][3]  # drawn grey, its hover with it
    assert sum(bool(t) for row in grey["text"] for t in row) == 1  # the grey trace carries its cells' text only
    # one host a row: the same (its row had a label, but no cell to hover or click)
    trace, grey = figures.gpu_now_heatmap(gpus(3, 2) + [dict(gpus(1, 1)[0], host="n9999", gpu_index=None)],
                                          {})["data"]
    assert trace["text"][3][0] == "n9999 · its GPUs gave no index" and grey["z"][3] == [0, None]
    assert sum(v is not None for row in grey["z"] for v in row) == 1 and grey["showscale"] is False


def test_a_tall_heat_map_has_its_axis_on_top_with_room_for_its_title():
    """Plotly grows the top margin for the axis labels or for the title, not both: the labels printed over the
    title. A tall map's title sits at the very top and the margin holds both (in Chromium: test_browser)."""
    from reports import figures

    rows = [{"user": f"u{u}", "host": f"host-{h:03d}", "active_h_30d": 1.0 + h, "held_h_30d": 0.0}
            for u in range(30) for h in range(40)]
    tall = figures.user_host_heatmap("t", rows, "30d")["layout"]
    assert tall["xaxis"]["side"] == "top" and tall["title"]["yref"] == "container"
    assert tall["margin"]["t"] >= 56 + 7 * len("host-000")  # the upright host names' room
    short = figures.user_host_heatmap("t", [r for r in rows if r["user"] in ("u1", "u2")], "30d")["layout"]
    assert short["xaxis"]["side"] == "bottom" and "yref" not in short["title"]
    # past 40 hosts, hosts down the side and users across: 1,000 hosts across were a pixel each
    many = rows + [dict(rows[0], host="host-zzz", user="u1", active_h_30d=7.0)]
    fig = figures.user_host_heatmap("t", many, "30d")
    (trace,) = fig["data"]
    assert trace["y"] == [f"host-{h:03d}" for h in range(40)] + ["host-zzz"] and len(trace["x"]) == 30
    assert trace["z"][40][trace["x"].index("u1")] == 7.0 and trace["z"][40][trace["x"].index("u2")] is None
    assert trace["z"][3][trace["x"].index("u7")] == 4.0 == trace["customdata"][3][trace["x"].index("u7")]
    assert trace["hovertemplate"].startswith("%{x} on %{y}")
    layout = fig["layout"]
    assert layout["height"] - layout["margin"]["t"] - layout["margin"]["b"] == 16 * 41  # 16 px a host
    assert layout["xaxis"]["side"] == "top"
    hosts = figures.gpu_heatmap([{"host": f"h{h}", "bucket": RUNS[0], "gpu_util_pct": 5.0} for h in range(3000)])
    assert hosts["layout"]["xaxis"]["side"] == "top"
    assert hosts["layout"]["height"] <= figures.MAX_FIGURE_PX + 300 < 32_767  # Chromium draws no taller canvas


def test_a_long_host_name_is_shortened_on_heat_map_axes_only():
    """A 90-character host name took most of a heat map's width: the axis shows its start and end, while the
    rows stay the whole names (two hosts alike in their first characters are two rows) and so does the hover."""
    from reports import figures

    long_a = "node-with-an-exceptionally-long-hostname-0001.cluster.example.org"
    long_b = long_a.replace("0001", "0002")
    gpus = [{"host": h, "gpu_index": 0, "util_pct": 50.0, "mem_used_bytes": None, "mem_total_bytes": None,
             "users": [], "busy": True, "unmeasured": False, "util": 50.0} for h in (long_a, long_b, "gpu01")]
    fig = figures.gpu_now_heatmap(gpus, {})
    (trace,) = fig["data"]
    assert trace["y"] == ["gpu01", long_a, long_b]
    axis = fig["layout"]["yaxis"]
    assert axis["tickvals"] == trace["y"] and axis["ticktext"][0] == "gpu01"
    assert axis["ticktext"][1:] == ["node-with-a…stname-0001", "node-with-a…stname-0002"]  # the host part, cut
    assert all(len(t) <= 24 for t in axis["ticktext"])
    twins = [dict(gpus[0], host="a" * 30 + ".lab-one"), dict(gpus[0], host="a" * 30 + ".lab-two")]
    assert figures.gpu_now_heatmap(twins, {})["layout"]["yaxis"]["ticktext"] == [g["host"] for g in twins]
    assert long_a in trace["text"][1][0]  # the hover names the whole host
    assert "tickvals" not in figures.gpu_now_heatmap(gpus[2:], {})["layout"]["yaxis"]  # short names: as they are
    # a long user name is not cut at its first dot, as an FQDN is
    user = "alexandra.papadopoulou-smith.research"
    heat = figures.user_host_heatmap("t", [{"user": user, "host": "gpu01", "active_h_30d": 1.0, "held_h_30d": 0.0}],
                                     "30d")
    assert heat["layout"]["yaxis"]["ticktext"] == ["alexandra.p…th.research"]


def test_every_fleet_range_counts_gpus_per_host_and_cpu_over_all_cpus(tmp_path):
    """Differential review: two hosts whose GPUs have the same uuid (`index:0`, NVML's uuid unreadable on
    both) read as one GPU in the 7 d, 30 d and 1 y ranges (0.5 or 1 GPU busy of 2); and the 24 h range's CPU
    use was the hosts' plain mean (a 16-CPU host at 100 % and a 256-CPU one at 1 %: 50.5 %) where the
    other ranges count all the CPUs (6.8 %)."""
    from fleetscope.settings import Settings
    from fleetscope.warehouse.rollup import rollup

    data = tmp_path / "data"
    for at in RUNS:  # docfactory's GPU 0 has one uuid on every host, as two hosts' index:0 do
        spool_run(data, at, [ok("c16", at, document("c16", at, cores=16, cpu_busy=1.0, gpus=[gpu(0, util=100)])),
                             ok("c256", at, document("c256", at, cores=256, cpu_busy=0.01,
                                                     gpus=[gpu(0, util=100)]))])
    assert not ingest_pending(data).rejected
    rollup(data, Settings(), now=NOW)
    site = build(data, tmp_path / "site").parent
    html = (site / "index.html").read_text(encoding="utf-8")
    fig, shared_x = figure(html, "fleet"), page_data(html)["x"]
    ranges = []
    for i, r in enumerate(fig["ranges"]):
        ranges.append({t["name"]: t for t in r["data"]})
        assert {t.pop("xs") for t in r["data"]} == {f"r{i}"} and shared_x[f"r{i}"]
    weighted = (16 * 100 + 256 * 1) / 272
    for label, traces in zip(["24 h", "7 d", "30 d", "1 y"], ranges):
        busy = [y for y in traces["GPUs busy"]["y"] if y is not None]
        cpu = [y for y in traces["CPU use"]["y"] if y is not None]
        assert busy and busy == pytest.approx([2.0] * len(busy)), (label, busy)
        assert cpu and cpu == pytest.approx([weighted] * len(cpu), rel=1e-3), (label, cpu)


def test_templates_read_a_rows_keys_as_jinja_does_including_keys_named_like_dict_methods():
    """The report's environment reads `row.key` on a plain dict by key first (630,000 AttributeErrors less
    for 1,000 host pages): every name must give what Jinja's own order gives, dict methods first (`vars.items()`
    of an inventory with a variable named `items`), a missing key still an error."""
    import jinja2

    env = reports.site._environment(NOW)
    row = {"user": "ada", "items": "shadowed", "get": 1, "none": None, "__class__": "x"}

    class Row(dict):
        user = "attribute"

    for obj in (row, Row(row), ["a"], "text"):
        for name in ("user", "items", "get", "keys", "none", "__class__", "missing", "upper", "append"):
            ours, jinjas = env.getattr(obj, name), jinja2.Environment.getattr(env, obj, name)
            assert type(ours) is type(jinjas), name
            if isinstance(ours, jinja2.Undefined):
                assert (ours._undefined_obj, ours._undefined_name) == (obj, name)
            else:
                assert ours == jinjas, name
    page = env.from_string("{% for k, v in vars.items() %}{{ k }}={{ v }};{% endfor %}{{ vars.get }}")
    assert page.render(vars={"items": 3, "get": 4}).startswith("items=3;get=4;&lt;built-in method get")
    with pytest.raises(jinja2.UndefinedError, match="missing"):
        env.from_string("{{ row.missing }}").render(row=row)


def test_every_page_says_when_collection_has_stopped(fleet_data, fleet_site, tmp_path):
    """Review: built 3 days after the last run (cron died, a report job still running), the pages read "2 / 3
    hosts up" with nothing to say it was 3 days old. Past stale_minutes without a run every page says so; a
    fresh build carries the same banner hidden, for report.js (the browser's clock: a page left open)."""
    def banner(html: str) -> str:
        return re.search(r'<p class="data-age"[^>]*>', html).group()

    fresh = (fleet_site / "index.html").read_text(encoding="utf-8")
    latest = re.fullmatch(r'<p class="data-age" data-latest="(\d+)" data-stale-s="1800" hidden>', banner(fresh))
    assert 0 <= int(latest.group(1)) - RUNS[-1].replace(tzinfo=timezone.utc).timestamp() < 60  # the last run
    old = build(fleet_data, tmp_path / "old", now=NOW + timedelta(days=3)).parent
    for page in ("index.html", "users.html", "problems.html", "hosts/gpu01.html"):
        html = (old / page).read_text(encoding="utf-8")
        assert "hidden" not in banner(html), page
        text = " ".join(re.sub(r"<[^>]+>", "", html[html.index('<p class="data-age"'):]).split())
        assert text.startswith(f"No collection run since {RUNS[-1]:%Y-%m-%d %H:%M} UTC (3.0 d ago): these pages "
                               "show the fleet as it was then. Is fleetscope collect still running (cron)?"), page
    # at stale_minutes exactly: not yet
    edge = build(fleet_data, tmp_path / "edge", now=RUNS[-1] + timedelta(minutes=30)).parent
    assert banner((edge / "index.html").read_text(encoding="utf-8")).endswith(" hidden>")
