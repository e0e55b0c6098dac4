"""Node detail like a cluster monitor (issue 7), read back from the generated HTML and latest.json: a host's top
processes with their GPUs, grouped per user; busy CPUs; the hosts table's address, groups, CPU and GPU columns;
the inventory group filter; the maintenance marker from admin_actions; the auto-refresh control."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from fleetscope.warehouse import connect, ingest_pending
from reports import build_site
from reports.site import _fmt_cputime
from tests.docfactory import GIB, admin_action, document, gpu, gpu_process, ok, spool_run, top_process, unreachable
from tests.reports.conftest import MAINTENANCE_AT, NOW, RUNS
from tests.reports.pages import has_table, hosts_table, html_files, table

INVENTORY_HOSTS = {
    "gpu01": {"address": "10.0.0.1", "groups": ["gpu", "rack7"]},
    "cpu01": {"address": "cpu01.lab", "groups": ["cpu", "rack7"]},
    # lost01 is not in the inventory any more: its name is its address, it is in no group.
}


def build(data_dir: Path, out: Path, **kwargs) -> Path:
    with contextlib.closing(connect(data_dir)) as con:
        return build_site(con, out, now=NOW, **kwargs)


@pytest.fixture(scope="module")
def grouped_site(fleet_data, tmp_path_factory):
    return build(fleet_data, tmp_path_factory.mktemp("grouped") / "site", inventory_hosts=INVENTORY_HOSTS).parent


def host_html(site: Path, host: str) -> str:
    return (site / "hosts" / f"{host}.html").read_text(encoding="utf-8")


def summary(html: str) -> str:
    (section,) = re.findall(r'<section class="summary">(.*?)</section>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", section).split())


# -- processes ------------------------------------------------------------------------------------------------

def test_host_page_lists_the_top_processes_of_the_latest_run_with_their_gpus(fleet_site):
    html = host_html(fleet_site, "gpu01")
    rows = table(html, "host-processes")
    # The last run's list (bob's kernel appeared only then), by CPU time; the CPU time of run 3 (i = 2).
    assert [(r["PID"], r["User"], r["Command"], r["CPU time"], r["CPU %"], r["Memory (RSS)"]) for r in rows] == [
        ("4242", "alice", "python train.py --epochs 10", "1:10:00", "98.0", "20.0 GiB"),
        ("4243", "alice", "python loader.py", "0:12:00", "20.0", "4.0 GiB"),
        ("777", "bob", "jupyter-kernel", "0:00:30", "1.5", "1.0 GiB"),
        ("1", "root", "/sbin/init", "0:00:12", "0.0", "16.0 MiB"),
    ]
    # The GPUs and GPU memory of the same run's GPU processes, by pid; a process on no GPU has none.
    assert {r["PID"]: (r["GPUs"], r["GPU memory"]) for r in rows} == {
        "4242": ("0", "38.0 GiB"), "4243": ("", ""), "777": ("1", "1.0 GiB"), "1": ("", "")}
    assert rows[0]["Started (UTC)"] == "2026-11-23 01:00" and rows[3]["Started (UTC)"] == "2026-11-01 08:00"
    # The page says the list is only the top consumers, how many of the host's processes it shows.
    text = " ".join(html.split())
    assert "4 processes listed of 400 on the host" in text
    assert "collect.top_processes" in text and "not every process" in text
    assert 'class="sortable host-processes"' in html


def test_processes_are_grouped_per_user_like_jobs(fleet_site):
    rows = {r["User"]: r for r in table(host_html(fleet_site, "gpu01"), "process-users")}
    assert list(rows) == ["alice", "bob", "root"]  # most CPU time first
    alice, bob, root = rows["alice"], rows["bob"], rows["root"]
    assert (alice["Processes"], alice["CPU %"], alice["Memory (RSS)"], alice["CPU time"]) == (
        "2", "118.0", "24.0 GiB", "1:22:00")
    assert (alice["GPUs"], alice["GPU memory"]) == ("0", "38.0 GiB")
    assert (bob["Processes"], bob["GPUs"], bob["GPU memory"]) == ("1", "1", "1.0 GiB")
    assert (root["Processes"], root["GPUs"], root["GPU memory"]) == ("1", "", "")
    cpu01 = table(host_html(fleet_site, "cpu01"), "process-users")
    assert [(r["User"], r["Processes"], r["CPU time"]) for r in cpu01] == [("carol", "1", "0:20:00")]


def test_a_gpu_process_outside_the_top_list_still_counts_for_its_user(tmp_path):
    # dave's process holds a GPU but is not among the host's top consumers: his row has it, the list does not.
    data = tmp_path / "data"
    for at in RUNS[:2]:
        held = [gpu(0, util=50, processes=[gpu_process(99, "dave", "sim", 3 * GIB)])]
        doc = document("gpu09", at, cores=4, gpus=held, top=[top_process(5, "erin", "rsync", cpu_time_s=100)])
        spool_run(data, at, [ok("gpu09", at, doc)])
    assert not ingest_pending(data).rejected
    html = host_html(build(data, tmp_path / "site").parent, "gpu09")
    assert [r["PID"] for r in table(html, "host-processes")] == ["5"]
    users = {r["User"]: r for r in table(html, "process-users")}
    assert (users["dave"]["Processes"], users["dave"]["GPUs"], users["dave"]["GPU memory"], users["dave"]["CPU time"]) \
        == ("1", "0", "3.0 GiB", "")
    assert (users["erin"]["Processes"], users["erin"]["GPUs"]) == ("1", "")


def test_busy_cpus_are_cpu_use_times_logical_cpus(fleet_site):
    rows = hosts_table(fleet_site / "index.html")
    # gpu01: 50 % of 64 CPUs; cpu01: 25 % of 8; lost01 never answered.
    assert (rows["gpu01"]["CPUs"], rows["gpu01"]["Busy CPUs"]) == ("64", f"{0.5 * 64:.1f}")
    assert (rows["cpu01"]["CPUs"], rows["cpu01"]["Busy CPUs"]) == ("8", f"{0.25 * 8:.1f}")
    assert (rows["lost01"]["CPUs"], rows["lost01"]["Busy CPUs"]) == ("", "")
    assert "CPUs: 32.0 busy of 64" in summary(host_html(fleet_site, "gpu01"))
    latest = {h["host"]: h for h in json.loads((fleet_site / "data" / "latest.json").read_text())["hosts"]}
    assert (latest["gpu01"]["busy_cpus"], latest["gpu01"]["cpu_logical"]) == (32.0, 64)
    assert latest["lost01"]["busy_cpus"] is None


def test_hosts_table_has_the_cluster_monitor_columns_once(fleet_site):
    html = (fleet_site / "index.html").read_text(encoding="utf-8")
    (head,) = re.findall(r'<table class="sortable filterable hosts".*?<thead>(.*?)</thead>', html, re.S)
    names = re.findall(r"<th[^>]*>([^<]*)</th>", head)
    assert names == ["Host", "Address", "Groups", "Status", "Maintenance", "Last seen", "Answered, 30 d %", "OS",
                     "CPUs", "Busy CPUs", "CPU %", "CPU-h of top processes", "Memory used / total", "GPUs",
                     "GPUs busy", "Users on GPUs"]
    rows = hosts_table(fleet_site / "index.html")
    # the share of its runs each host answered: cpu01 timed out at one of 3, lost01 never answered
    assert [rows[h]["Answered, 30 d %"] for h in ("gpu01", "cpu01", "lost01")] == ["100.0", "66.7", "0.0"]
    page = " ".join(host_html(fleet_site, "cpu01").split())
    assert "answered: 66.7 % of runs over 7 d · 66.7 % over 30 d · 66.7 % since its first run, 2026-11-23 09:00 UTC" \
        in page
    # CPU time of the last run's top processes, in hours.
    assert rows["gpu01"]["CPU-h of top processes"] == f"{(4200 + 720 + 30 + 12) / 3600:.2f}"
    assert rows["cpu01"]["CPU-h of top processes"] == f"{1200 / 3600:.2f}"
    assert rows["lost01"]["CPU-h of top processes"] == ""
    assert (rows["gpu01"]["GPUs"], rows["gpu01"]["GPUs busy"]) == ("2", "1")
    assert (rows["lost01"]["GPUs"], rows["lost01"]["GPUs busy"]) == ("", "")
    # Without an inventory every host is reached by its name and in no group; no group buttons.
    assert [(rows[h]["Address"], rows[h]["Groups"]) for h in ("cpu01", "gpu01", "lost01")] == [
        ("cpu01", ""), ("gpu01", ""), ("lost01", "")]
    assert "group-filter" not in html


def test_host_without_a_process_list_says_so(fleet_site):
    html = host_html(fleet_site, "lost01")
    assert "No process list at the latest sample." in html
    assert not has_table(html, "host-processes") and not has_table(html, "process-users")


# -- inventory address and groups -----------------------------------------------------------------------------

def test_inventory_address_and_groups_become_columns_and_a_group_filter(grouped_site):
    index = grouped_site / "index.html"
    rows = hosts_table(index)
    assert [(rows[h]["Address"], rows[h]["Groups"]) for h in ("cpu01", "gpu01", "lost01")] == [
        ("cpu01.lab", "cpu, rack7"), ("10.0.0.1", "gpu, rack7"), ("lost01", "")]
    html = index.read_text(encoding="utf-8")
    (box,) = re.findall(r'<div class="group-filter"[^>]*data-table="hosts-table"[^>]*>(.*?)</div>', html, re.S)
    assert re.findall(r'data-group="([^"]*)"', box) == ["", "cpu", "gpu", "rack7"]  # "" = all; sorted
    assert 'id="hosts-table"' in html
    groups = dict(re.findall(r'<tr[^>]*data-groups=\'([^\']*)\'>\s*<td data-sort="([^"]*)"', html))
    assert {host: json.loads(g) for g, host in groups.items()} == {
        "cpu01": ["cpu", "rack7"], "gpu01": ["gpu", "rack7"], "lost01": []}
    host = host_html(grouped_site, "gpu01")
    assert "address: 10.0.0.1" in summary(host) and "groups: gpu, rack7" in summary(host)
    assert "address:" not in summary(host_html(grouped_site, "lost01"))
    latest = {h["host"]: h for h in json.loads((grouped_site / "data" / "latest.json").read_text())["hosts"]}
    assert (latest["gpu01"]["address"], latest["gpu01"]["groups"]) == ("10.0.0.1", ["gpu", "rack7"])
    assert (latest["lost01"]["address"], latest["lost01"]["groups"]) == ("lost01", [])


def test_group_names_are_escaped_and_all_and_ungrouped_left_out(fleet_data, tmp_path):
    evil = "<b>x'y</b>"
    index = build(fleet_data, tmp_path / "site",
                  inventory_hosts={"gpu01": {"address": "<i>a</i>", "groups": [evil, "all", "ungrouped"]}})
    html = index.read_text(encoding="utf-8")
    assert "<b>x" not in html and "<i>a" not in html
    rows = hosts_table(index)
    assert (rows["gpu01"]["Groups"], rows["gpu01"]["Address"]) == (evil, "<i>a</i>")
    (attr,) = re.findall(r"data-groups='([^']*)'>\s*<td data-sort=\"gpu01\"", html)
    assert json.loads(attr.replace("&#39;", "'")) == [evil]
    assert re.findall(r'data-group="([^"]*)"', html) == ["", "&lt;b&gt;x&#39;y&lt;/b&gt;"]


# -- maintenance ----------------------------------------------------------------------------------------------

def test_maintenance_of_one_gpu_is_marked_with_who_and_when(fleet_site):
    # GPU 1 of gpu01 was put in maintenance by ops; a check-mode "off" and a failed "on" for GPU 0 changed nothing.
    when = MAINTENANCE_AT.strftime("%Y-%m-%d %H:%M")
    rows = hosts_table(fleet_site / "index.html")
    assert rows["gpu01"]["Maintenance"] == f"maintenance GPU 1 since {when} by ops"
    assert rows["cpu01"]["Maintenance"] == rows["lost01"]["Maintenance"] == ""
    html = host_html(fleet_site, "gpu01")
    assert f"maintenance GPU 1 since {when} by ops" in summary(html)
    gpus = {g["GPU"]: g for g in table(html, "gpus")}
    assert gpus["1"]["Maintenance"] == f"maintenance since {when} by ops" and gpus["0"]["Maintenance"] == ""
    latest = {h["host"]: h for h in json.loads((fleet_site / "data" / "latest.json").read_text())["hosts"]}
    assert latest["gpu01"]["maintenance"] == {"gpus": [1], "since": MAINTENANCE_AT.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                              "by": "ops"}
    assert [g["maintenance"] for g in latest["gpu01"]["gpus"]] == [False, True]
    assert latest["cpu01"]["maintenance"] is None


@pytest.fixture
def two_gpu_host(tmp_path):
    data = tmp_path / "data"
    for at in RUNS[:2]:
        spool_run(data, at, [ok("gpu02", at, document("gpu02", at, gpus=[gpu(0), gpu(1)]))])
    assert not ingest_pending(data).rejected
    return data


def maintenance_now(data: Path, out: Path):
    """(hosts table cell, {GPU: cell}, latest.json maintenance) of gpu02."""
    index = build(data, out)
    html = host_html(index.parent, "gpu02")
    gpus = {g["GPU"]: g.get("Maintenance", "") for g in table(html, "gpus")}
    (host,) = json.loads((index.parent / "data" / "latest.json").read_text())["hosts"]
    return hosts_table(index)["gpu02"]["Maintenance"], gpus, host["maintenance"]


def test_the_latest_maintenance_action_decides_per_host_and_gpu(two_gpu_host, tmp_path):
    data, at = two_gpu_host, RUNS[1] + timedelta(minutes=1)
    stamp = at.strftime("%Y-%m-%d %H:%M")
    on = {"action": "maintenance", "state": "on", "gpu": None}

    # Nothing recorded: no marker anywhere, and the GPU table has no maintenance column.
    assert maintenance_now(data, tmp_path / "s0") == ("", {"0": "", "1": ""}, None)

    # Every GPU (no gpu argument): the host and each GPU.
    admin_action(data, at, "gpu02", on, operator="ops")
    cell, gpus, latest = maintenance_now(data, tmp_path / "s1")
    assert cell == f"maintenance all GPUs since {stamp} by ops"
    assert gpus == {"0": f"maintenance since {stamp} by ops", "1": f"maintenance since {stamp} by ops"}
    assert latest["gpus"] == "all" and latest["by"] == "ops"

    # Later, GPU 0 alone taken out of it: the host is no longer wholly in maintenance, GPU 1 still is.
    admin_action(data, at + timedelta(minutes=1), "gpu02", {**on, "state": "off", "gpu": 0}, operator="kim")
    cell, gpus, latest = maintenance_now(data, tmp_path / "s2")
    assert cell == f"maintenance GPU 1 since {stamp} by ops"
    assert gpus == {"0": "", "1": f"maintenance since {stamp} by ops"}
    assert latest["gpus"] == [1]

    # A whole-host "off" ends it for every GPU; actions in check mode or that failed do not count.
    admin_action(data, at + timedelta(minutes=2), "gpu02", {**on, "state": "off"}, operator="kim")
    admin_action(data, at + timedelta(minutes=3), "gpu02", on, check_mode=True, operator="kim")
    admin_action(data, at + timedelta(minutes=3), "gpu02", {**on, "gpu": 1}, status="failed", operator="kim")
    assert maintenance_now(data, tmp_path / "s3") == ("", {"0": "", "1": ""}, None)

    # One GPU on, then the whole host on by someone else: all GPUs, by the latest.
    admin_action(data, at + timedelta(minutes=4), "gpu02", {**on, "gpu": 0}, operator="kim")
    admin_action(data, at + timedelta(minutes=5), "gpu02", on, operator="lee")
    cell, gpus, latest = maintenance_now(data, tmp_path / "s4")
    later = (at + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M")
    assert cell == f"maintenance all GPUs since {later} by lee"
    assert set(gpus.values()) == {f"maintenance since {later} by lee"}


def test_a_gpu_in_maintenance_is_not_counted_idle_and_the_gpu_map_says_what_each_gpu_is(tmp_path):
    """Review: the summary offered a GPU in maintenance as idle (free), and the GPUs-now hover read "idle" for a
    free GPU and an idle one holding memory alike, and "no processes" for one held by a process whose owner
    /proc hid. GPU 0 busy (alice), 1 idle but held (bob), 2 free, 3 free and in maintenance, 4 held by a
    process without an owner, 5 busy and in maintenance (busy all the same)."""
    from tests.reports.pages import figure

    data, at = tmp_path / "data", RUNS[0]
    gpus = [gpu(0, util=90, processes=[gpu_process(1, "alice")]),
            gpu(1, util=0, mem_used_bytes=20 * GIB, processes=[gpu_process(2, "bob", "jupyter", 20 * GIB)]),
            gpu(2, util=0, mem_used_bytes=0), gpu(3, util=0, mem_used_bytes=0),
            gpu(4, util=0, mem_used_bytes=5 * GIB, processes=[gpu_process(3, None, None, 5 * GIB)]),
            gpu(5, util=80, processes=[gpu_process(4, "carol")])]
    spool_run(data, at, [ok("gpu03", at, document("gpu03", at, gpus=gpus))])
    assert not ingest_pending(data).rejected
    for index in (3, 5):
        admin_action(data, at, "gpu03", {"action": "maintenance", "state": "on", "gpu": index}, operator="ops")
    index = build(data, tmp_path / "site")
    summary = json.loads((index.parent / "data" / "latest.json").read_text())["summary"]
    assert {k: summary[k] for k in ("gpus_busy", "gpus_idle", "gpus_held", "gpus_maintenance", "gpus_total")} == {
        "gpus_busy": 2, "gpus_idle": 3, "gpus_held": 2, "gpus_maintenance": 1, "gpus_total": 6}
    html = index.read_text(encoding="utf-8")
    assert "<b>2</b> busy · 3 idle (2 holding memory) · 1 in maintenance · 6 total" in " ".join(html.split())
    (cells,) = figure(html, "gpus-now")["data"][0]["text"]
    states = [c.split("<br>")[1].split(" (", 1)[1].rstrip(")") for c in cells]
    assert states == ["busy", "idle, held", "free", "free, maintenance", "idle, held", "busy, maintenance"]
    assert [c.split("<br>")[3] for c in cells] == ["alice", "bob", "no processes", "no processes",
                                                   "processes, owner unknown", "carol"]


def test_whole_host_maintenance_keeps_the_gpus_a_latest_sample_without_gpus_does_not_name(two_gpu_host, tmp_path):
    """Walkthrough: GPU 1 on, the whole host on, GPU 1 off, while the host's latest sample had no GPU (NVML
    failing on the broken host put in maintenance): GPU 0, still in maintenance, was shown nowhere. The
    GPUs the host had around its whole-host action (gpu_hourly) count as "all" too."""
    from fleetscope.settings import Settings
    from fleetscope.warehouse.rollup import rollup

    data = two_gpu_host
    # gpu05 had a third GPU, taken out before its latest sample: "every GPU" is its latest sample's two
    spool_run(data, RUNS[0], [ok("gpu05", RUNS[0], document("gpu05", RUNS[0], gpus=[gpu(0), gpu(1), gpu(2)]))])
    spool_run(data, RUNS[1], [ok("gpu05", RUNS[1], document("gpu05", RUNS[1], gpus=[gpu(0), gpu(1)]))])
    assert not ingest_pending(data).rejected
    rollup(data, Settings(), now=RUNS[1] + timedelta(minutes=1))  # GPUs 0 and 1 (and gpu05's 2) in gpu_hourly
    at = RUNS[2]
    spool_run(data, at, [ok("gpu02", at, document("gpu02", at, gpus=None))])  # NVML gone at the latest run
    assert not ingest_pending(data).rejected
    on = {"action": "maintenance", "state": "on", "gpu": None}
    later = at + timedelta(days=3)  # NVML failed on Friday, the host was put in maintenance on Monday
    for host in ("gpu02", "gpu05"):
        admin_action(data, later + timedelta(minutes=1), host, {**on, "gpu": 1}, operator="ops")
        admin_action(data, later + timedelta(minutes=2), host, on, operator="ops")
        admin_action(data, later + timedelta(minutes=3), host, {**on, "state": "off", "gpu": 1}, operator="ops")
    index = build(data, tmp_path / "site")
    hosts = {h["host"]: h for h in json.loads((index.parent / "data" / "latest.json").read_text())["hosts"]}
    assert hosts["gpu02"]["maintenance"] is not None and hosts["gpu02"]["maintenance"]["gpus"] == [0], hosts
    assert hosts["gpu05"]["maintenance"]["gpus"] == [0]  # not GPU 2, which it no longer has
    stamp = (later + timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M")
    assert hosts_table(index)["gpu02"]["Maintenance"] == f"maintenance GPU 0 since {stamp} by ops"


def test_a_warehouse_without_admin_actions_or_process_lists_still_builds(tmp_path):
    data = tmp_path / "data"
    for at in RUNS[:2]:
        spool_run(data, at, [ok("gpu03", at, document("gpu03", at, gpus=[gpu(0, util=80)]))])
    assert not ingest_pending(data).rejected
    assert not (data / "admin_actions").exists() and not (data / "host_processes").exists()
    index = build(data, tmp_path / "site")
    assert hosts_table(index)["gpu03"]["Maintenance"] == ""
    html = host_html(index.parent, "gpu03")
    assert "No process list at the latest sample." in html
    assert "Maintenance" not in table(html, "gpus")[0]


# -- every page -----------------------------------------------------------------------------------------------

def test_every_page_has_the_auto_refresh_control(fleet_site):
    for page in html_files(fleet_site):
        html = page.read_text(encoding="utf-8")
        (select,) = re.findall(r'<select id="refresh"[^>]*>(.*?)</select>', html, re.S)
        assert re.findall(r'<option value="([^"]*)">([^<]*)</option>', select) == [
            ("0", "off"), ("1", "1 min"), ("5", "5 min"), ("15", "15 min")], page


def test_cpu_time_is_written_as_ps_does():
    assert [_fmt_cputime(s) for s in (None, 0, 65, 4920, 3 * 86400 + 7200 + 5)] == [
        "", "0:00:00", "0:01:05", "1:22:00", "3-02:00:05"]


def test_host_timelines_are_read_host_by_host_not_the_whole_fleet_at_once(monkeypatch):
    """1,000-host review: the whole fleet's timelines as Python rows were 3.7 GB of the report's 3.85 GB. Rows
    are now taken host by host from a query in host order: a host's rows whole, one with none read no further
    than the next host's, and no more than the chunk being read kept waiting."""
    import duckdb

    from reports import site

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 'h' || (i // 3) AS host, i AS v FROM range(15) r(i) WHERE i // 3 <> 2")
    monkeypatch.setattr(site._HostRows, "CHUNK", 2)
    stream = site._HostRows(con.cursor(), "SELECT host, v FROM t ORDER BY host, v", {})
    seen = []
    for host in ("h0", "h1", "h2", "h3", "h4"):  # h2 has no rows
        seen.append([r["v"] for r in stream.take(host)])
        assert len(stream.ahead) <= 1, stream.ahead  # at most the host the last chunk ended in
    assert seen == [[0, 1, 2], [3, 4, 5], [], [9, 10, 11], [12, 13, 14]]
    stream.close()


def test_the_share_of_runs_a_host_answered_over_7_days_30_days_and_a_year(tmp_path):
    """Unreachable 400 and 20 days ago (the first outside the year), ok at the last run and 10 days ago."""
    data, end = tmp_path / "data", RUNS[-1]
    for days, up in ((400, False), (20, False), (10, True), (0, True)):
        at = end - timedelta(days=days)
        spool_run(data, at, [ok("flaky", at, document("flaky", at)) if up else unreachable("flaky", at)])
    assert not ingest_pending(data).rejected
    index = build(data, tmp_path / "site")
    assert hosts_table(index)["flaky"]["Answered, 30 d %"] == "66.7"
    page = " ".join(host_html(index.parent, "flaky").split())
    assert "answered: 100.0 % of runs over 7 d · 66.7 % over 30 d · 66.7 % over 1 y</div>" in page
    # runs only a while ago (review: bare "%" signs): "no run" for the windows without any
    data2 = tmp_path / "data2"
    for days in (40, 35):
        at = end - timedelta(days=days)
        spool_run(data2, at, [unreachable("gone", at)])
    spool_run(data2, end, [ok("fresh", end, document("fresh", end))])
    assert not ingest_pending(data2).rejected
    index2 = build(data2, tmp_path / "site2")
    page = " ".join(host_html(index2.parent, "gone").split())
    assert "answered: no run over 7 d · no run over 30 d · 0.0 % since its first run," in page
    assert hosts_table(index2)["gone"]["Answered, 30 d %"] == ""
