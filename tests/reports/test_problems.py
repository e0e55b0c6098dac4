"""The problems page: each kind of problem from a warehouse built to have exactly one host with it."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from fleetscope.warehouse import connect, ingest_pending
from reports import build_site
from tests.docfactory import GIB, document, gpu, gpu_process, iso_z, ok, spool_run, top_process, unreachable
from tests.reports.pages import has_table, table

T0 = datetime(2026, 11, 24, 8, 0)
RUNS = [T0 + timedelta(minutes=30 * i) for i in range(4)]  # 08:00 ... 09:30
NOW = RUNS[-1] + timedelta(minutes=1)


def _docs(i: int, at: datetime) -> list:
    last = i == len(RUNS) - 1
    hot = [gpu(0, util=99, temperature_c=92 if last else 80,
               processes=[gpu_process(10, "carol", "python train.py", 60 * GIB)]),
           gpu(1, util=99, temperature_c=70)]
    hot[0]["throttle_reasons"] = ["hw_thermal_slowdown", "sw_power_cap"] if i >= 2 else []
    hot[1]["throttle_reasons"] = ["sw_power_cap"]  # at its power cap: normal, not a problem

    ecc = [gpu(0, util=50), gpu(1, util=50)]
    ecc[0].update(ecc_volatile_uncorrected=2, ecc_aggregate_uncorrected=5, remapped_rows_pending=True)

    # held01: GPU 0 idle and held by dave since the first run (90 min); GPU 1 busy until the third run,
    # held for the last 30 min only.
    held = [gpu(0, util=0, mem_used_bytes=20 * GIB, processes=[gpu_process(20, "dave", "jupyter", 20 * GIB)]),
            gpu(1, util=0 if i >= 2 else 80, mem_used_bytes=9 * GIB,
                processes=[gpu_process(21, "erin", "python serve.py", 9 * GIB)])]

    skew = document("skew01", at)
    skew["time"]["collected_at"] = iso_z(at + timedelta(seconds=42))
    full = document("full01", at)
    full["disks"]["filesystems"][0].update(mount="/scratch", used_bytes=475 * GIB, free_bytes=25 * GIB)

    # hidden01: /proc hides other users' processes from the collector since the last run (hidepid=); its GPU
    # process's owner is then unknown
    hidden = document("hidden01", at, gpus=[gpu(0, util=90, processes=[gpu_process(30, *(
        (None, None) if last else ("frank", "python sim.py")))])])
    hidden["processes"].update(total=12 if last else 400, others_hidden=last, top=[top_process(31, "monitor", "bash")])
    # old01: a collector from before others_hidden: not known, not a problem
    old = document("old01", at)
    del old["processes"]["others_hidden"]
    del old["memory"]["oom_kills"]  # nor OOM kills: not known, not a problem

    # oom01: the OOM killer kills 2 processes before the third run and 1 before the last; reboot01 has 5 kills
    # from an earlier boot, reboots before the third run and has 1 kill since
    oom = document("oom01", at)
    oom["memory"]["oom_kills"] = (0, 0, 2, 3)[i]
    rebooted = document("reboot01", at)
    rebooted["memory"]["oom_kills"] = (5, 5, 1, 1)[i]
    if i >= 2:
        rebooted["host"]["boot_time"] = iso_z(RUNS[2] - timedelta(minutes=10))

    # lost01: GPU 2 had uncorrected ECC errors at the second run and fell off the bus after it: NVML numbers
    # the 3 left 0-2 (the uuids and bus ids stay); nvml01: NVML fails to start at the last run
    lost = [gpu(i) for i in range(4)]
    if i == 1:
        lost[2].update(ecc_volatile_uncorrected=1, remapped_rows_pending=True)
    if i >= 2:
        lost = [lost[0], lost[1], {**lost[3], "index": 2}]
    nvml = document("nvml01", at, gpus=None if last else [gpu(0), gpu(1)])
    if last:
        nvml["gpus"]["reason"] = ("NVML init failed: NVMLError_LibRmVersionMismatch: RM has detected an NVML/RM "
                                  "version mismatch.")

    # xid01: GPU 1 (bus 19) logs Xid 79 before the third run and is gone from it; an application faults on GPU 0
    # (Xid 13) before the last run; the third run's event is read again by the last one (seq 71: counted once)
    xid_gpus = [gpu(0)] if i >= 2 else [gpu(0), gpu(1)]
    xid_doc = document("xid01", at, gpus=xid_gpus)
    fell = {"at": iso_z(RUNS[2] - timedelta(minutes=1)), "seq": 71, "pci": "0000:19:00", "xid": 79,
            "message": "pid=1, name=python, GPU has fallen off the bus."}
    fault = {"at": iso_z(RUNS[3] - timedelta(minutes=2)), "seq": 90, "pci": "0000:18:00", "xid": 13,
             "message": "pid=4242, name=python, Graphics Exception"}
    xid_doc["xid"] = {"available": True, "reason": None, "truncated": False, "boot_id": "b00t",
                      "events": [] if i < 2 else [fell] if i == 2 else [fell, fault]}

    results = [
        ok("xid01", at, xid_doc),
        ok("lost01", at, document("lost01", at, gpus=lost)),
        ok("nvml01", at, nvml),
        ok("hot01", at, document("hot01", at, gpus=hot)),
        ok("ecc01", at, document("ecc01", at, gpus=ecc)),
        ok("held01", at, document("held01", at, gpus=held)),
        ok("skew01", at, skew),
        ok("full01", at, full),
        ok("fine01", at, document("fine01", at, gpus=[gpu(0, util=70)])),
        ok("hidden01", at, hidden),
        ok("old01", at, old),
        ok("oom01", at, oom),
        ok("reboot01", at, rebooted),
        # answers, but its collector could not read the disks at the last run: the rest of it is stored
        ok("partial01", at, document("partial01", at, errors=[
            {"subsystem": "disks", "type": "PermissionError", "message": "[Errno 13] Permission denied: '/data'"}]
            if last else [])),
    ]
    if i == 1:
        results.append({"host": "flaky01", "status": "failed", "message": "MODULE FAILURE: <oops>",
                        "ts": str(at), "document": None})
    else:
        results.append(ok("flaky01", at, document("flaky01", at)))
    if i >= 2:
        results.append(unreachable("down01", at, "ssh: connect to host down01 port 22: Connection timed out"))
    else:
        results.append(ok("down01", at, document("down01", at)))
    return results


@pytest.fixture(scope="module")
def problems_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("problems-data")
    for i, at in enumerate(RUNS):
        spool_run(data, at, _docs(i, at))
    assert not ingest_pending(data).rejected
    return data


#: A sample stands for the 30 minutes since the one before, as rollup.max_interval_s says where hosts are
#: collected every half hour (the idle-held durations are counted as the rollups count them).
HALF_HOUR = {"max_interval_s": 1800}


def build(data, out, **settings) -> str:
    with contextlib.closing(connect(data)) as con:
        index = build_site(con, out, now=NOW, settings={**HALF_HOUR, **settings})
    return (index.parent / "problems.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def problems_html(problems_data, tmp_path_factory):
    return build(problems_data, tmp_path_factory.mktemp("problems-site") / "site")


def test_hosts_unreachable_now_or_failing_in_the_window(problems_html):
    rows = {r["Host"]: r for r in table(problems_html, "problems-hosts")}
    assert set(rows) == {"down01", "flaky01", "partial01"}
    partial = rows["partial01"]
    assert partial["Status now"] == "ok 1 subsystem error" and partial["Runs not ok, 24 h"] == "0 / 4"
    assert "disks: PermissionError" in partial["Message"], partial
    down, flaky = rows["down01"], rows["flaky01"]
    assert down["Status now"] == "unreachable"
    assert down["Status since"] == "31 min ago"  # the first unreachable run, 09:00
    assert down["Last seen"] == "61 min ago"  # 08:30
    assert down["Runs not ok, 24 h"] == "2 / 4"
    assert down["Message"] == "ssh: connect to host down01 port 22: Connection timed out"
    assert flaky["Status now"] == "ok"
    assert flaky["Runs not ok, 24 h"] == "1 / 4"
    assert flaky["Message"] == "failed at 2026-11-24 08:30: MODULE FAILURE: <oops>"
    assert "MODULE FAILURE: &lt;oops&gt;" in problems_html


def test_hot_or_throttled_gpus_ignore_the_power_cap(problems_html):
    (row,) = table(problems_html, "problems-heat")
    assert (row["Host"], row["GPU"], row["Hottest °C"], row["Now °C"]) == ("hot01", "0", "92", "92")
    assert row["Samples hot"] == "1 / 4"
    assert row["Samples throttled"] == "2 / 4"
    assert row["Throttle reasons"] == "hw_thermal_slowdown"


def test_thresholds_come_from_the_settings(problems_data, tmp_path):
    html = build(problems_data, tmp_path / "site", hot_gpu_c=75.0, throttle_reasons=["sw_power_cap"],
                 idle_held_minutes=30, clock_skew_s=60.0, disk_full_pct=96.0, problem_hours=1)
    heat = {(r["Host"], r["GPU"]): r for r in table(html, "problems-heat")}
    assert set(heat) == {("hot01", "0"), ("hot01", "1")}
    assert heat[("hot01", "0")]["Samples hot"] == "3 / 3"  # the last hour: 08:30, 09:00, 09:30
    assert heat[("hot01", "1")]["Throttle reasons"] == "sw_power_cap"
    held = {(r["Host"], r["GPU"]): r["Idle and held for"] for r in table(html, "problems-idle-held")}
    assert set(held) == {("held01", "0"), ("held01", "1")}
    # GPU 1 was busy at 08:30, held at 09:00 and 09:30: as the rollups count it, the 09:00 sample stands for
    # the time since 08:30 too (it read 30 min, one interval short)
    assert held[("held01", "1")] == "60 min"
    # and a gap in the samples counts no more than max_interval_s, as in the rollups: 2 x 10 min
    short = build(problems_data, tmp_path / "short", idle_held_minutes=20, max_interval_s=600)
    held = {(r["Host"], r["GPU"]): r["Idle and held for"] for r in table(short, "problems-idle-held")}
    assert held == {("held01", "0"): "at least 30 min", ("held01", "1"): "20 min"}
    assert not has_table(html, "problems-clock") and "within 60.0 s" in html
    assert not has_table(html, "problems-disk")


def test_a_threshold_is_met_at_its_value_and_the_window_leaves_older_runs_out(problems_data, tmp_path):
    html = build(problems_data, tmp_path / "site", disk_full_pct=95.0, problem_hours=0.5)
    (disk,) = table(html, "problems-disk")
    assert (disk["Host"], disk["Used %"]) == ("full01", "95.0")  # "at least this full"
    hosts = {r["Host"]: r for r in table(html, "problems-hosts")}
    assert set(hosts) == {"down01", "partial01"}  # flaky01 failed at 08:30, before the half hour to 09:30
    assert hosts["down01"]["Runs not ok, 0.5 h"] == "2 / 2"


def test_ecc_errors_and_remapped_rows(problems_html):
    """At the latest run (ecc01), or earlier in the window on a GPU that is gone since (lost01's GPU 2: it was
    listed only while its host's latest sample had it)."""
    rows = {r["Host"]: r for r in table(problems_html, "problems-ecc")}
    assert set(rows) == {"ecc01", "lost01"}
    row, lost = rows["ecc01"], rows["lost01"]
    assert (row["GPU"], row["Uncorrected, since driver load"], row["Uncorrected, lifetime"]) == ("0", "2", "5")
    assert row["Remapping"] == "pending (reset the GPU)" and row["Now"] == "still" and row["Last"] == "60 s ago"
    assert (lost["GPU"], lost["Uncorrected, since driver load"]) == ("2", "1")
    assert lost["Remapping"] == "pending (reset the GPU)"
    assert (lost["Now"], lost["Last"]) == ("GPU missing", "61 min ago")


def test_xid_events_of_the_kernel_log_by_gpu_and_code_the_gpus_own_first(problems_html):
    rows = table(problems_html, "problems-xid")
    assert [(r["Host"], r["PCI"], r["Xid"]) for r in rows] == [("xid01", "0000:19:00", "79"),
                                                               ("xid01", "0000:18:00", "13")]
    fell, fault = rows
    assert (fell["GPU"], fell["Meaning"], fell["Events"], fell["Last"]) == ("", "GPU has fallen off the bus", "1",
                                                                              "32 min ago")  # read twice, once
    assert fell["Last message"] == "pid=1, name=python, GPU has fallen off the bus."
    assert (fault["GPU"], fault["Meaning"], fault["Events"]) == (
        "0", "graphics engine exception (mostly the application's fault)", "1")


def test_gpus_missing_or_unreadable(problems_html):
    """lost01 lost a GPU after its second run, nvml01's NVML failed at its last; hosts that never had a GPU
    (no driver) are not listed."""
    rows = {r["Host"]: r for r in table(problems_html, "problems-gpus-missing")}
    assert set(rows) == {"lost01", "nvml01", "xid01"}
    lost, nvml = rows["lost01"], rows["nvml01"]
    assert (lost["GPUs now"], lost["GPUs before"], lost["Last seen with them"]) == ("3", "4", "61 min ago")
    assert lost["Missing (index then: model, bus id)"] == "GPU 2: NVIDIA H100 80GB HBM3, 00000000:1A:00.0"
    assert lost["Why none are read"] == ""
    assert (nvml["GPUs now"], nvml["GPUs before"], nvml["Last seen with them"]) == ("0", "2", "31 min ago")
    assert nvml["Why none are read"].startswith("NVML init failed: NVMLError_LibRmVersionMismatch")


def test_gpus_idle_but_holding_memory_longer_than_the_threshold(problems_html):
    row, second = table(problems_html, "problems-idle-held")
    assert (second["GPU"], second["Idle and held for"], second["Held by"]) == ("1", "60 min", "erin")  # 09:00-09:30
    assert (row["Host"], row["GPU"], row["Held by"]) == ("held01", "0", "dave")
    assert row["Idle and held for"] == "at least 1.5 h"  # held at every sample there is
    assert row["Memory used"] == "20.0 GiB / 80.0 GiB"


def test_clock_skew_and_full_disks(problems_html):
    (clock,) = table(problems_html, "problems-clock")
    assert (clock["Host"], clock["Host clock minus controller clock (s)"]) == ("skew01", "42.0")
    (disk,) = table(problems_html, "problems-disk")
    assert (disk["Host"], disk["Mount"], disk["Used %"]) == ("full01", "/scratch", "95.0")


def test_processes_killed_for_lack_of_memory(problems_html):
    rows = {r["Host"]: r for r in table(problems_html, "problems-oom")}
    assert set(rows) == {"oom01", "reboot01"}  # old01's collector does not count them; the others killed none
    assert (rows["oom01"]["Processes killed"], rows["oom01"]["First, after"], rows["oom01"]["Last, by"]) == (
        "3", "2026-11-24 08:30", "2026-11-24 09:30")
    # the 5 of the boot before are not this window's; the 1 since the reboot (inside the window) is
    assert (rows["reboot01"]["Processes killed"], rows["reboot01"]["Last, by"]) == ("1", "2026-11-24 09:00")
    assert rows["oom01"]["Memory used % now"] == "25.0"


def test_oom_kills_bridge_a_sample_without_the_count_and_count_since_a_boot_in_the_window(tmp_path):
    """Review: a sample without the count (its memory part failed) lost the rises on both sides of it; a host
    with no sample in the day before the window (new, or back after days down) lost the kills since its boot."""
    def doc(host, at, kills, boot):
        d = document(host, at)
        d["memory"]["oom_kills"] = kills
        d["host"]["boot_time"] = iso_z(boot) if boot else None
        return ok(host, at, d)

    old_boot, new_boot = T0 - timedelta(days=9), RUNS[1] - timedelta(minutes=5)
    plan = {  # host: (kills at each run, None: no sample; boot)
        "gap01": ((5, None, 8, 8), old_boot),  # 3 killed across the sample without the count
        "new01": ((None, 2, 2, 2), new_boot),  # first seen after a boot inside the window, 2 killed since it
        "new02": ((None, 9, 9, 9), old_boot),  # first seen long after its boot: whether in the window, not known
        "noboot01": ((5, 7, 9, 9), None),  # its boot time not known (its host part failed): the same boot
    }
    data = tmp_path / "data"
    at = T0 - timedelta(days=3)  # back01, 3 days before, then again after a boot inside the window: 4 since
    spool_run(data, at, [doc("back01", at, 0, old_boot)])
    for i, at in enumerate(RUNS):
        results = []
        for host, (kills, boot) in plan.items():
            if kills[i] is not None or host == "gap01":
                results.append(doc(host, at, kills[i], boot))
        if i == 2:
            results.append(doc("back01", at, 4, new_boot))
        spool_run(data, at, results)
    assert not ingest_pending(data).rejected
    rows = {r["Host"]: r for r in table(build(data, tmp_path / "site"), "problems-oom")}
    assert {h: (r["Processes killed"], r["First, after"], r["Last, by"]) for h, r in rows.items()} == {
        "gap01": ("3", "2026-11-24 08:00", "2026-11-24 09:00"),
        "back01": ("4", "2026-11-24 08:25", "2026-11-24 09:00"),
        "new01": ("2", "2026-11-24 08:25", "2026-11-24 08:30"),
        "noboot01": ("4", "2026-11-24 08:00", "2026-11-24 09:00"),
    }


def test_problem_count_is_on_every_page(problems_data, tmp_path):
    with contextlib.closing(connect(problems_data)) as con:
        site = build_site(con, tmp_path / "site", now=NOW, settings=HALF_HOUR).parent
    # down01, flaky01, partial01, lost01, nvml01 and xid01 (GPUs missing), xid01's Xid 79 (its 13, an
    # application's fault, is listed, not counted), hot01 GPU 0, ecc01 GPU 0, lost01 GPU 2 (ECC), held01 GPU 0
    # and 1, skew01, full01, hidden01, oom01 and reboot01 (OOM kills)
    for page in ("index.html", "users.html", "problems.html", "hosts/fine01.html"):
        assert '<span class="count">17</span>' in (site / page).read_text(encoding="utf-8"), page
    # and data/latest.json, for an alerting tool: the count, per section, and each host's sections
    latest = json.loads((site / "data" / "latest.json").read_text(encoding="utf-8"))
    assert latest["problems"]["count"] == 17 == sum(latest["problems"]["by_section"].values())
    assert (latest["problems"]["by_section"]["oom"], latest["problems"]["by_section"]["xid"]) == (2, 1)
    hosts = {h["host"]: h["problems"] for h in latest["hosts"]}
    assert (hosts["oom01"], hosts["xid01"], hosts["fine01"], hosts["down01"]) == (
        ["oom"], ["gpus_missing", "xid"], [], ["hosts"])


def test_hosts_whose_proc_hides_other_users_processes(problems_data, problems_html, tmp_path):
    """At each host's latest sample: hidden01 hides them since its last run; old01's collector does not say."""
    (row,) = table(problems_html, "problems-hidden")
    assert (row["Host"], row["Processes it could see"]) == ("hidden01", "12")
    assert "hidepid=" in problems_html and "gid=" in problems_html
    site = Path(problems_html_path(problems_data, tmp_path))
    host = " ".join((site / "hosts" / "hidden01.html").read_text(encoding="utf-8").split())
    assert "of the 12 the collector could see" in host and "hides other users' processes" in host
    fine = " ".join((site / "hosts" / "fine01.html").read_text(encoding="utf-8").split())
    assert "hidepid" not in fine
    old = " ".join((site / "hosts" / "old01.html").read_text(encoding="utf-8").split())
    assert "hidepid" not in old
    latest = {h["host"]: h for h in json.loads((site / "data" / "latest.json").read_text())["hosts"]}
    assert (latest["hidden01"]["processes_hidden"], latest["fine01"]["processes_hidden"],
            latest["old01"]["processes_hidden"]) == (True, False, None)
    assert [[p["user"] for p in g["processes"]] for g in latest["hidden01"]["gpus"]] == [[None]]


def problems_html_path(data, tmp_path) -> Path:
    with contextlib.closing(connect(data)) as con:
        return build_site(con, tmp_path / "site", now=NOW, settings=HALF_HOUR).parent


def test_no_host_hiding_processes_says_so(tmp_path):
    """The first run alone: hidden01 did not hide them yet."""
    spool_run(tmp_path / "data", RUNS[0], _docs(0, RUNS[0]))
    assert not ingest_pending(tmp_path / "data").rejected
    html = build(tmp_path / "data", tmp_path / "site")
    assert not has_table(html, "problems-hidden")
    assert "The collector sees every process on every host." in html


def test_hidden_processes_are_judged_at_each_hosts_latest_sample_and_a_retired_host_is_left_out(tmp_path):
    """hid01 hides them at its latest sample; was01 did until its latest; gone01 did at its last run, an hour
    ago, and reports no processes (its host page says why there are none); once out of the inventory it is
    retired and no longer a problem."""
    data = tmp_path / "data"
    for i, at in enumerate(RUNS):
        last = i == len(RUNS) - 1
        hid, was, gone = document("hid01", at), document("was01", at), document("gone01", at)
        hid["processes"].update(others_hidden=last, top=[top_process(5, "monitor", "bash")])
        was["processes"].update(others_hidden=not last, top=[top_process(6, "monitor", "bash")])
        gone["processes"].update(others_hidden=True, top=[], total=1)
        spool_run(data, at, [ok("hid01", at, hid), ok("was01", at, was)] + ([ok("gone01", at, gone)] if i < 2 else []))
    assert not ingest_pending(data).rejected
    listed = {r["Host"] for r in table(build(data, tmp_path / "site"), "problems-hidden")}
    assert listed == {"hid01", "gone01"}
    page = " ".join((tmp_path / "site" / "hosts" / "gone01.html").read_text(encoding="utf-8").split())
    assert "No process list at the latest sample. <code>/proc</code> on this host hides other users'" in page
    was = " ".join((tmp_path / "site" / "hosts" / "was01.html").read_text(encoding="utf-8").split())
    assert "hidepid" not in was
    with contextlib.closing(connect(data)) as con:
        index = build_site(con, tmp_path / "inventory-site", now=NOW, settings=HALF_HOUR,
                           inventory_hosts={"hid01": {}, "was01": {}})
    html = (index.parent / "problems.html").read_text(encoding="utf-8")
    assert {r["Host"] for r in table(html, "problems-hidden")} == {"hid01"}
