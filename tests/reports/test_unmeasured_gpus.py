"""GPUs that give no utilization (MIG mode): in use, busy or not unknown. They were counted as 0 %: a MIG GPU
running jobs showed up as idle-held on the problems page, its users' hours as idle-held, and it pulled the
fleet's mean utilization down. Now such samples are 'unmeasured' and left out of the utilization means."""

from __future__ import annotations

import contextlib
import json
import shutil
from datetime import datetime, timedelta

import pytest

from fleetscope.bookings import SyncReport, parse, store
from fleetscope.settings import Settings
from fleetscope.warehouse import connect, ingest_pending
from fleetscope.warehouse.rollup import rollup
from reports import build_site
from reports.sql import fetch, prepared
from tests.docfactory import GIB, document, gpu, gpu_process, ok, spool_run
from tests.reports.pages import figure, table

T0 = datetime(2026, 11, 25, 8, 0)
STEP = timedelta(minutes=10)
RUNS = [T0 + STEP * i for i in range(13)]  # 08:00 ... 10:00: past the 60 min an idle-held GPU needs
NOW = RUNS[-1] + timedelta(minutes=1)


def mig_gpu(index, processes, mem_used_bytes=30 * GIB):
    """A GPU in MIG mode as the collector reports it: no whole-GPU utilization (NVML: NotSupported)."""
    g = gpu(index, util=0, mem_used_bytes=mem_used_bytes, processes=processes)
    g.update(mig_mode=True, utilization_gpu_pct=None, utilization_mem_pct=None, utilization_gpu_avg_pct=None,
             utilization_samples=None)
    return g


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """mig01: GPU 0 in MIG mode with frank's job on it, GPU 1 at 60 % (gina), GPU 2 in MIG mode with nothing
    on it; held02: GPU 0 idle, held by dave."""
    data = tmp_path_factory.mktemp("unmeasured-data")
    for at in RUNS:
        spool_run(data, at, [
            ok("mig01", at, document("mig01", at, gpus=[
                mig_gpu(0, [gpu_process(30, "frank", "python finetune.py", 30 * GIB)]),
                gpu(1, util=60, mem_used_bytes=10 * GIB, processes=[gpu_process(31, "gina", "python a.py", 10 * GIB)]),
                mig_gpu(2, [], mem_used_bytes=0),
            ])),
            ok("held02", at, document("held02", at, gpus=[
                gpu(0, util=0, mem_used_bytes=20 * GIB, processes=[gpu_process(20, "dave", "jupyter", 20 * GIB)]),
            ])),
        ])
    assert not ingest_pending(data).rejected
    rollup(data, Settings(), now=NOW)
    return data


@pytest.fixture(scope="module")
def site(data, tmp_path_factory):
    with contextlib.closing(connect(data)) as con:
        return build_site(con, tmp_path_factory.mktemp("unmeasured-site") / "site", now=NOW).parent


def q(data, sql):
    with contextlib.closing(connect(data)) as con:
        return con.execute(sql).fetchall()


def test_the_rollups_class_a_held_mig_gpu_unmeasured_not_idle_held(data):
    seconds = (len(RUNS) - 1) * STEP.total_seconds()  # the first sample stands for nothing
    rows = {(h, i): r for h, i, *r in q(data, """
        SELECT host, gpu_index, sum(seconds), sum(active_s), sum(idle_held_s), sum(unmeasured_s), sum(free_s),
               sum(util_s), sum(util_samples), sum(util_seconds), sum(samples)
        FROM gpu_hourly GROUP BY ALL""")}
    assert rows[("mig01", 0)] == [seconds, 0, 0, seconds, 0, 0, 0, 0, len(RUNS)]
    assert rows[("mig01", 1)] == [seconds, seconds, 0, 0, 0, 60 * seconds, len(RUNS), seconds, len(RUNS)]
    assert rows[("held02", 0)] == [seconds, 0, seconds, 0, 0, 0, len(RUNS), seconds, len(RUNS)]
    assert rows[("mig01", 2)] == [seconds, 0, 0, 0, seconds, 0, 0, 0, len(RUNS)]  # nothing on it: free
    daily = q(data, "SELECT host, gpu_index, unmeasured_s, util_samples, util_seconds FROM gpu_daily ORDER BY 1, 2")
    assert daily == [("held02", 0, 0, len(RUNS), seconds), ("mig01", 0, seconds, 0, 0),
                     ("mig01", 1, 0, len(RUNS), seconds), ("mig01", 2, 0, 0, 0)]
    users = {u: r for u, *r in q(data, 'SELECT "user", active_s, idle_held_s, unmeasured_s FROM user_gpu_daily')}
    assert users == {"frank": [0, 0, seconds], "gina": [seconds, 0, 0], "dave": [0, seconds, 0]}


def test_the_fleet_mean_utilization_leaves_the_mig_gpu_out(data):
    # gina's GPU at 60 %, dave's at 0 %: 30 %. Counting the MIG GPU as 0 % made it 20 %.
    with contextlib.closing(connect(data)) as con:
        for name in ("fleet_hourly", "fleet_daily"):
            (row,) = fetch(con, name, {"since": T0 - timedelta(days=1), "bucket_s": 86400})
            assert row["gpu_util_pct"] == pytest.approx(30.0), name
        week = fetch(con, "fleet_week_hour", {"since": T0 - timedelta(days=1)})
        assert {r["hour"]: round(r["util_pct"], 6) for r in week} == {8: 30.0, 9: 30.0, 10: 30.0}


def test_the_problems_page_does_not_call_a_mig_gpu_idle(site):
    html = (site / "problems.html").read_text(encoding="utf-8")
    (row,) = table(html, "problems-idle-held")
    assert (row["Host"], row["GPU"], row["Held by"]) == ("held02", "0", "dave")


def test_the_users_page_counts_mig_hours_apart(site):
    html = (site / "users.html").read_text(encoding="utf-8")
    now = {r["User"]: r for r in table(html, "users-now")}
    assert (now["frank"]["GPUs"], now["frank"]["of them idle"]) == ("1", "0")  # not known to be idle
    assert (now["dave"]["GPUs"], now["dave"]["of them idle"]) == ("1", "1")
    users = {r["User"]: r for r in table(html, "users")}
    hours = f"{(len(RUNS) - 1) * STEP.total_seconds() / 3600:.2f}"  # 2.00
    assert (users["frank"]["Active GPU-h, 1 y"], users["frank"]["Idle-held GPU-h, 1 y"],
            users["frank"]["Unmeasured GPU-h, 1 y"]) == ("0.00", "0.00", hours)
    assert (users["dave"]["Idle-held GPU-h, 30 d"], users["dave"]["Unmeasured GPU-h, 30 d"]) == (hours, "0.00")
    assert "gives no utilization" in html
    bars = figure(html, "user-hours")["ranges"][2]["data"]
    assert [b["name"] for b in bars] == ["active", "idle, held", "held, utilization unknown (MIG)"]
    assert dict(zip(bars[2]["y"], bars[2]["x"])) == {"frank": 2.0, "gina": 0.0, "dave": 0.0}
    host = (site / "hosts" / "mig01.html").read_text(encoding="utf-8")
    by_user = {r["User"]: r for r in table(host, "host-users")}
    assert by_user["frank"]["Unmeasured GPU-h, 7 d"] == hours and by_user["gina"]["Active GPU-h, 7 d"] == hours


def test_without_mig_gpus_the_tables_have_no_unmeasured_column(fleet_site):
    html = (fleet_site / "users.html").read_text(encoding="utf-8")
    assert table(html, "users") and all("Unmeasured GPU-h, 1 y" not in r for r in table(html, "users"))
    assert "utilization unknown" not in html


def test_a_booked_mig_gpu_is_neither_booked_idle_nor_unseen_when_unbooked(data, tmp_path):
    """frank books mig01:0 for 08:00-09:00 and runs on it 08:00-10:00. Whether it computed is unknown: the
    booked hour is not 'booked but idle' (it was, all of it, when unknown counted as idle), and the hour
    he held it without a booking is unbooked use (it was none, since the GPU was never 'active'). ivan
    books mig01:2, on which nothing ran: booked but idle, utilization or not."""
    calendar = (b"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//fleetscope tests//EN\nBEGIN:VEVENT\nUID:f1\n"
                b"DTSTART:20261125T080000Z\nDTEND:20261125T090000Z\nSUMMARY:@frank finetune\nLOCATION:mig01:0\n"
                b"END:VEVENT\nBEGIN:VEVENT\nUID:i1\nDTSTART:20261125T080000Z\nDTEND:20261125T090000Z\n"
                b"SUMMARY:@ivan sweep\nLOCATION:mig01:2\nEND:VEVENT\nEND:VCALENDAR\n")
    bookings, unmatched, _ = parse("lab.ics", calendar, {"mig01", "held02"}, NOW - timedelta(days=35),
                                   NOW + timedelta(days=35))
    assert unmatched == 0
    data = shutil.copytree(data, tmp_path / "data")  # the other tests' warehouse stays without bookings
    store(data, SyncReport(bookings=bookings), NOW, ["lab.ics"])
    with contextlib.closing(connect(data)) as con, prepared(con):
        rows = fetch(con, "bookings_usage", {"since_7d": datetime(2026, 11, 19), "since_30d": datetime(2026, 10, 27),
                                             "busy_pct": 5.0, "max_interval_s": 600.0, "held_bytes": 1024**3})
    hours = {r["user"]: (r["booked_h_30d"], r["booked_idle_h_30d"], r["unbooked_h_30d"]) for r in rows}
    assert hours["frank"] == pytest.approx((1.0, 0.0, 1.0))
    assert hours["ivan"] == pytest.approx((1.0, 1.0, 0.0))


def test_now_a_mig_gpu_in_use_is_neither_idle_nor_idle_held(site):
    latest = json.loads((site / "data" / "latest.json").read_text(encoding="utf-8"))
    assert latest["summary"] | {"users": None} == {
        "hosts_up": 2, "hosts_total": 2, "gpus_busy": 1, "gpus_idle": 2, "gpus_held": 1, "gpus_unmeasured": 1,
        "gpus_maintenance": 0, "gpus_total": 4, "users": None, "unknown_owners": False}
    mig = next(h for h in latest["hosts"] if h["host"] == "mig01")["gpus"][0]
    assert (mig["util_pct"], mig["busy"], mig["idle_held"], mig["unmeasured"]) == (None, False, False, True)
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "1 in use, utilization unknown (MIG)" in index
    now, grey = figure(index, "gpus-now")["data"]
    row = now["y"].index("mig01")
    assert "utilization unknown (in use)" in now["text"][row][0]
    assert now["z"][row][0] is None and grey["z"][row][0] == 0  # drawn grey: as a gap it looked like no GPU
    assert grey["text"][row][0] == now["text"][row][0] and now["hoverongaps"] is False
    # the grey trace carries its own cells' text only, not the whole map's again
    assert [[bool(t) for t in r] for r in grey["text"]] == [[v is not None for v in r] for r in grey["z"]]
