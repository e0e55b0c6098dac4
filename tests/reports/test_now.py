"""What the report calls "now": one utilization everywhere (NVML's ~15 s mean, as the rollups), and only hosts
that are up, those whose latest run answered and is not stale, in the fleet's GPUs and users now."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta

import pytest

from fleetscope.warehouse import connect, ingest_pending
from reports import build_site
from tests.docfactory import GIB, document, gpu, gpu_process, ok, spool_run
from tests.reports.pages import figure, hosts_table, page_data, table

T0 = datetime(2026, 11, 25, 9, 0)
EARLIER = [T0 + timedelta(minutes=30 * i) for i in range(3)]  # 09:00, 09:30, 10:00: both hosts
LATER = EARLIER[-1] + timedelta(minutes=40)  # 10:40, a01 only: old01 is past stale_minutes (30)
NOW = LATER + timedelta(minutes=1)


def text_of(page) -> str:
    """The page's text as a reader sees it: tags out, whitespace as one space."""
    import html
    import re

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))).split())


def _a01(at: datetime) -> dict:
    """GPU 0: erin's job, 0 % at the instant NVML was asked but 60 % over its last ~15 s: busy. GPU 1: frank's
    notebook, 50 % at that instant but 5 % over 15 s, the busy threshold itself: idle, holding memory."""
    busy = gpu(0, util=0, processes=[gpu_process(10, "erin", "python train.py", 30 * GIB)])
    busy["utilization_gpu_avg_pct"] = 60.0
    held = gpu(1, util=50, mem_used_bytes=10 * GIB, processes=[gpu_process(11, "frank", "jupyter", 10 * GIB)])
    held["utilization_gpu_avg_pct"] = 5.0
    return document("a01", at, gpus=[busy, held])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    data = tmp_path_factory.mktemp("now-data")
    for at in EARLIER:  # old01: ivan's idle notebook holds its GPU
        old = document("old01", at, gpus=[gpu(0, util=0, processes=[gpu_process(20, "ivan", "jupyter", GIB)])])
        spool_run(data, at, [ok("a01", at, _a01(at)), ok("old01", at, old)])
    spool_run(data, LATER, [ok("a01", LATER, _a01(LATER))])  # old01 no longer in the runs (--limit, say)
    assert not ingest_pending(data).rejected
    with contextlib.closing(connect(data)) as con:
        return build_site(con, tmp_path_factory.mktemp("now-site") / "site", now=NOW,
                          settings={"idle_held_minutes": 10}).parent


def test_busy_and_idle_by_the_15_s_mean_on_every_page(site):
    latest = json.loads((site / "data" / "latest.json").read_text(encoding="utf-8"))
    summary = latest["summary"]
    assert (summary["gpus_busy"], summary["gpus_idle"], summary["gpus_held"]) == (1, 1, 1)
    (a01,) = [h for h in latest["hosts"] if h["host"] == "a01"]
    assert [(g["util_pct"], g["busy"], g["idle_held"]) for g in a01["gpus"]] == [(60.0, True, False),
                                                                                (5.0, False, True)]
    users = {r["User"]: r for r in table((site / "users.html").read_text(encoding="utf-8"), "users-now")}
    assert (users["erin"]["of them idle"], users["frank"]["of them idle"]) == ("0", "1")
    host = (site / "hosts" / "a01.html").read_text(encoding="utf-8")
    assert [g["Utilization %"] for g in table(host, "gpus")] == ["60", "5"]
    index = (site / "index.html").read_text(encoding="utf-8")
    fig, shared_x = figure(index, "fleet"), page_data(index)["x"]
    day = {t["name"]: t for t in fig["ranges"][0]["data"]}
    assert day["GPUs busy"]["y"][-1] == 1.0 and day["GPU utilization"]["y"][-1] == 32.5
    assert shared_x[day["GPUs busy"]["xs"]][-1] == "2026-11-25 10:39"  # the 3-minute bucket of 10:40


def test_a_stale_host_is_not_up_and_its_gpus_and_users_are_not_now(site):
    latest = json.loads((site / "data" / "latest.json").read_text(encoding="utf-8"))
    assert (latest["summary"]["hosts_up"], latest["summary"]["hosts_total"]) == (1, 2)
    assert latest["summary"]["gpus_total"] == 2 and latest["summary"]["users"] == ["erin", "frank"]
    (old,) = [h for h in latest["hosts"] if h["host"] == "old01"]
    assert old["status"] == "ok" and old["stale"] is True  # its last answer stays on record, as stale
    users = {r["User"] for r in table((site / "users.html").read_text(encoding="utf-8"), "users-now")}
    assert users == {"erin", "frank"}  # ivan's job was there 40 min ago: not "now"
    (heat,) = figure((site / "index.html").read_text(encoding="utf-8"), "gpus-now")["data"]
    assert heat["y"] == ["a01"]
    # nor is it held "now" on the problems page: only frank's GPU, held at every run (3 x 10 min counted)
    problems = (site / "problems.html").read_text(encoding="utf-8")
    held = table(problems, "problems-idle-held")
    assert [(r["Host"], r["GPU"], r["Held by"]) for r in held] == [("a01", "1", "frank")]
    # it is a problem of its own: silent, and shown as stale rather than "ok" wherever its status is
    (silent,) = table(problems, "problems-hosts")
    assert (silent["Host"], silent["Status now"]) == ("old01", "stale")
    assert silent["Status since"] == "41 min ago"  # its last answer, 10:00 (not its "ok" since 09:00: review)
    assert silent["Message"] == "no run has reached it since 2026-11-25 10:00 UTC (ok then)"
    rows = hosts_table(site / "index.html")
    assert (rows["old01"]["Status"], rows["a01"]["Status"]) == ("stale", "ok")
    assert "status: stale (ok at its last run" in text_of(site / "hosts" / "old01.html")


def test_the_24_h_chart_starts_with_a_whole_run_and_its_cpu_use(tmp_path):
    """The 24 h window's start cut a run in two: its first point was that run's hosts sampled after the start
    alone (a spike or a dip), and every host's CPU use was missing there, as its sample before the start was
    left out. Now a cut run is left out, and the first whole run's CPU use is measured from the samples before."""
    end = datetime(2026, 11, 25, 12, 0)
    start = end - timedelta(hours=24)
    runs = [  # a01 (no GPU) is 20 % busy, b01 80 %: the first whole run's 50 % needs both hosts' CPU use
        [("a01", start - timedelta(minutes=5), 0.2), ("b01", start - timedelta(minutes=5), 0.8)],
        [("a01", start - timedelta(seconds=1), 0.2), ("b01", start + timedelta(seconds=1), 0.8)],  # cut in two
        [("a01", start + timedelta(minutes=5), 0.2), ("b01", start + timedelta(minutes=5), 0.8)],
        [("a01", end, 0.2), ("b01", end, 0.8)],
    ]
    data = tmp_path / "data"
    for run in runs:
        spool_run(data, run[0][1], [ok(h, at, document(h, at, cpu_busy=busy,
                                                       gpus=None if h == "a01" else [gpu(0, util=80)]))
                                    for h, at, busy in run])
    assert not ingest_pending(data).rejected
    with contextlib.closing(connect(data)) as con:
        index = build_site(con, tmp_path / "site", now=end + timedelta(minutes=1))
    html = index.read_text(encoding="utf-8")
    fig, shared_x = figure(html, "fleet"), page_data(html)["x"]
    day = {t["name"]: t for t in fig["ranges"][0]["data"]}
    x = shared_x[day["CPU use"]["xs"]]
    assert x[0] == "2026-11-24 12:03"  # the whole run at 12:05 (3-minute buckets), not the half at 12:00:01
    # both hosts' CPUs together: a01's 20 % over the 301 s since its sample before, b01's 80 % over 299 s
    assert day["CPU use"]["y"][0] == pytest.approx((20 * 301 + 80 * 299) / 600) and day["GPUs busy"]["y"][0] == 1.0
    assert len(x) == 2  # the whole runs at 12:05 and at the end: no GPU-only half of the cut run


def test_a_first_run_without_gpus_explains_its_empty_charts(tmp_path):
    """The first `make collect` on a machine without a GPU: the fleet chart drew GPU lines and a GPUs-busy axis
    for no GPU, the host's CPU chart was a blank box (CPU use needs two samples), and the users page said the
    rollups had not run (review in Chromium)."""
    data = tmp_path / "data"
    spool_run(data, T0, [ok("solo", T0, document("solo", T0, gpus=None))])
    assert not ingest_pending(data).rejected
    with contextlib.closing(connect(data)) as con:
        index = build_site(con, tmp_path / "site", now=T0 + timedelta(minutes=1))
    fleet = figure(index.read_text(encoding="utf-8"), "fleet")["ranges"][0]
    assert [t["name"] for t in fleet["data"]] == ["CPU use", "host memory used"] and "yaxis2" not in fleet["layout"]
    cpu = figure((index.parent / "hosts" / "solo.html").read_text(encoding="utf-8"), "host-0")
    assert cpu["data"] == [] and "measured between two samples" in cpu["layout"]["annotations"][0]["text"]
    assert "No GPUs: no host of the fleet has reported one" in text_of(index.parent / "users.html")


def test_a_range_without_gpu_samples_keeps_the_gpu_lines_of_a_fleet_that_has_gpus(tmp_path):
    """The GPU host down for the last day: the 24 h range has no GPU sample, but the fleet has GPUs, so its
    chart keeps the GPU lines and axis (empty there) rather than look like a fleet without any."""
    data = tmp_path / "data"
    spool_run(data, T0, [ok("g01", T0, document("g01", T0, gpus=[gpu(0, util=80)])),
                         ok("c01", T0, document("c01", T0, gpus=None))])
    later = T0 + timedelta(hours=25)
    spool_run(data, later, [ok("c01", later, document("c01", later, gpus=None))])
    assert not ingest_pending(data).rejected
    with contextlib.closing(connect(data)) as con:
        index = build_site(con, tmp_path / "site", now=later + timedelta(minutes=1))
    day = figure(index.read_text(encoding="utf-8"), "fleet")["ranges"][0]
    assert "GPU utilization" in [t["name"] for t in day["data"]] and "yaxis2" in day["layout"]


def test_processes_of_an_unknown_owner_are_no_user_in_the_count(tmp_path):
    """A process whose owner the host would not tell (hidepid, a container's uid) was counted as a user named
    "(unknown)" in the fleet's header, while the hosts table left it out."""
    data = tmp_path / "data"
    gpus = [gpu(0, util=80, processes=[gpu_process(1, "erin"), gpu_process(2, None)])]
    spool_run(data, T0, [ok("a01", T0, document("a01", T0, gpus=gpus))])
    assert not ingest_pending(data).rejected
    with contextlib.closing(connect(data)) as con:
        index = build_site(con, tmp_path / "site", now=T0 + timedelta(minutes=1))
    text = text_of(index)
    assert "1 user on GPUs (and processes whose owner is unknown)" in text
    assert "On GPUs now: (unknown), erin." in text  # named in the list all the same
    # and in latest.json, a flag, not a user a script would count
    summary = json.loads((index.parent / "data" / "latest.json").read_text(encoding="utf-8"))["summary"]
    assert summary["users"] == ["erin"] and summary["unknown_owners"] is True


def test_a_host_that_is_down_shows_its_last_figures_as_such(tmp_path):
    """Walkthrough: a host unreachable at the latest run showed "CPU % 79.2" in the fleet table and "CPU: 79.2 %"
    on its page, as if measured now. Its figures are now greyed in the table, with when they are from, and its
    page says "as of its last answer"; a host that is up shows neither."""
    from tests.docfactory import unreachable

    data = tmp_path / "data"
    first, at, later = T0 - timedelta(minutes=5), T0, T0 + timedelta(minutes=5)
    for t in (first, at):  # two samples: a CPU % between them
        spool_run(data, t, [ok("a01", t, document("a01", t)), ok("b01", t, document("b01", t))])
    spool_run(data, later, [ok("a01", later, document("a01", later)), unreachable("b01", later)])
    assert not ingest_pending(data).rejected
    with contextlib.closing(connect(data)) as con:
        index = build_site(con, tmp_path / "site", now=later + timedelta(minutes=1))
    html = index.read_text(encoding="utf-8")
    (down_row,) = [line for line in html.splitlines() if "<tr" in line and 'class="down"' in line]
    assert "b01" in html[html.index(down_row):].split("</tr>")[0]
    assert 'title="not up: its figures are from its last answer, 2026-11-25 09:00 UTC"' in html
    assert html.count('class="down"') == 1  # not a01's row
    b01 = text_of(index.parent / "hosts" / "b01.html")
    assert "as of its last answer, 2026-11-25 09:00 UTC" in b01 and "CPU: 25.0 %" in b01
    assert "as of its last answer" not in text_of(index.parent / "hosts" / "a01.html")


def test_a_host_back_after_a_gap_does_not_outweigh_the_fleet_in_the_24_h_cpu_line(tmp_path):
    """Review: the 24 h CPU line weighted each host by its jiffies since its previous sample, uncapped: a
    2 %-busy host back after 2 hours outweighed a 90 %-busy one sampled 5 minutes before (5.5 % for the run).
    Its interval counts max_interval_s (600 s) now, as in the rollups."""
    data = tmp_path / "data"
    start = T0 - timedelta(hours=3)
    for k in range(31):
        at = start + timedelta(minutes=5 * k)
        results = [ok("a01", at, document("a01", at, cpu_busy=0.9))]
        if k < 2 or k >= 26:  # b01 away from k = 2 to 25: back 2 h 5 min after its last sample
            results.append(ok("b01", at, document("b01", at, cpu_busy=0.02)))
        spool_run(data, at, results)
    assert not ingest_pending(data).rejected
    with contextlib.closing(connect(data)) as con:
        index = build_site(con, tmp_path / "site", now=start + timedelta(minutes=5 * 30, seconds=30))
    html = index.read_text(encoding="utf-8")
    fig, shared_x = figure(html, "fleet"), page_data(html)["x"]
    day = {t["name"]: t for t in fig["ranges"][0]["data"]}
    cpu = dict(zip(shared_x[day["CPU use"]["xs"]], day["CPU use"]["y"]))

    def point(k):  # the run's 3-minute bucket
        at = start + timedelta(minutes=5 * k)
        return (at - timedelta(minutes=at.minute % 3)).strftime("%Y-%m-%d %H:%M")

    back, both, alone = point(26), point(27), point(10)
    assert cpu[back] == pytest.approx(100 * (0.9 * 300 + 0.02 * 600) / 900, abs=0.05), cpu  # was 5.5
    assert cpu[both] == pytest.approx(46.0, abs=0.05)
    assert cpu[alone] == pytest.approx(90.0, abs=0.05)


def test_the_fleet_page_names_the_first_40_users_on_gpus_and_counts_the_rest(tmp_path):
    """At a thousand hosts a few hundred names made a wall of text at the top of the fleet page."""
    data = tmp_path / "data"
    gpus = [gpu(i, util=80, processes=[gpu_process(100 + i, f"user{i:02d}")]) for i in range(45)]
    spool_run(data, T0, [ok("a01", T0, document("a01", T0, gpus=gpus))])
    assert not ingest_pending(data).rejected
    with contextlib.closing(connect(data)) as con:
        index = build_site(con, tmp_path / "site", now=T0 + timedelta(minutes=1))
    text = text_of(index)
    names = ", ".join(f"user{i:02d}" for i in range(40))
    assert f"On GPUs now: {names} and 5 more (" in text
    assert "user40" not in text.split("On GPUs now:")[1].split("On this page")[0]
