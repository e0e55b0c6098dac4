"""Rollups, compaction and retention on a real warehouse: exact sums, counter resets and gaps, the
active / idle-held / unmeasured / free split, per-user shares, idempotence and crash safety."""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from fleetscope.settings import load
from fleetscope.warehouse import connect, host_rows, ingest_pending, partitions
from fleetscope.warehouse.catalog import sql_file
from fleetscope.warehouse.ingest import write_table
from fleetscope.warehouse.rollup import (
    ROLLED_DIR,
    ROLLUP_FILE,
    ROLLUP_FORMAT,
    RollupReport,
    _source_view,
    apply_retention,
    rollup,
    rollup_due,
    rollup_params,
)
from reports.sql import fetch
from tests import docfactory as f

GIB = 1024**3
DAY1 = datetime(2026, 11, 20)
STEP = 600  # seconds between samples, equal to rollup.max_interval_s
POWER = {0: 400.0, 1: 90.0}
OUTAGE = (DAY1 + timedelta(hours=30), DAY1 + timedelta(hours=31))  # gpu01 down on day 2, 06:00-07:00
REBOOT = DAY1 + timedelta(hours=40)  # day 2, 16:00: counters restart
RELOAD = DAY1 + timedelta(hours=12)  # day 1, 12:00: the GPU driver reloads, energy restarts


@pytest.fixture
def settings(tmp_path):
    cfg = tmp_path / "fleetscope.toml"
    cfg.write_text("[rollup]\nmax_interval_s = 600\nheld_mem_mib = 1024\n[report]\nbusy_threshold_pct = 5.0\n")
    return load(cfg)


def fleet_docs():
    """gpu01 over two days every 10 min: GPU 0 shared by alice (3 GiB) and bob (1 GiB), busy during the
    day hours and idle-held at night; GPU 1 free. An outage, a reboot and a driver reload on the way."""
    energy = {0: 5 * 10**9, 1: 10**9}
    boot = f.BOOT
    for k in range(2 * 86400 // STEP):
        t = DAY1 + timedelta(seconds=k * STEP)
        if t == RELOAD:
            energy = {0: 0, 1: 0}
        for i in energy:
            energy[i] += int(POWER[i] * STEP * 1000)  # the GPUs draw power through the outage too
        if OUTAGE[0] <= t < OUTAGE[1]:
            continue
        busy = 8 <= t.hour < 20
        procs = [f.gpu_process(100, "alice", gpu_mem_bytes=3 * GIB), f.gpu_process(200, "bob", gpu_mem_bytes=GIB)]
        doc = f.document("gpu01", t, cpu_busy=0.5, gpus=[
            f.gpu(0, util=90 if busy else 0, mem_used_bytes=4 * GIB, power_w=POWER[0], energy_mj=energy[0],
                  temperature_c=70 if busy else 35, processes=procs),
            f.gpu(1, util=0, mem_used_bytes=0, power_w=POWER[1], energy_mj=energy[1]),
        ])
        if t >= REBOOT:
            boot = REBOOT - timedelta(minutes=3)
            doc["host"]["boot_time"] = f.iso_z(boot)
            doc["cpu"]["jiffies"] = {k: v // 1000 for k, v in f.jiffies(t, 16, 0.5).items()}
        yield t, doc


def store(data_dir, docs, name="gen"):
    """Write the documents' rows through the warehouse's own writer, one file per table and day."""
    by_day = defaultdict(lambda: defaultdict(list))
    for t, doc in docs:
        for table, rows in host_rows(f.ok("gpu01", t, doc), f"r{t:%Y%m%d%H%M}").items():
            by_day[t.date()][table].extend(rows)
    con = duckdb.connect()
    for day, tables in by_day.items():
        for table, rows in tables.items():
            write_table(con, data_dir, table, f"{name}-{day}", rows)
    con.close()


@pytest.fixture
def warehouse(tmp_path, settings):
    data = tmp_path / "data"
    store(data, fleet_docs())
    report = rollup(data, settings, now=DAY1 + timedelta(days=2, hours=1))
    assert report.days_rolled == ["2026-11-20", "2026-11-21"]
    return data


def q(data, sql, params=None):
    con = connect(data)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_seconds_are_counted_once_gaps_capped_and_split_four_ways(warehouse):
    rows = q(warehouse, "SELECT ts::DATE, gpu_index, samples, seconds, active_s + idle_held_s + unmeasured_s + free_s "
                        "FROM gpu_daily ORDER BY 1, 2")
    day1, day2 = 144, 144 - 6  # samples; day 2 lost six to the outage
    # Each sample stands for the 600 s before it; the first ever stands for nothing; the hour-long gap
    # counts as one 600 s interval, not 4200 s.
    expected_seconds = {date(2026, 11, 20): (day1 - 1) * STEP, date(2026, 11, 21): day2 * STEP}
    for day, _gpu, samples, seconds, split in rows:
        assert samples == (day1 if day.day == 20 else day2)
        assert seconds == expected_seconds[day] == pytest.approx(split)


def test_active_idle_held_and_free(warehouse):
    rows = dict(((r[0].day, r[1]), r[2:]) for r in q(
        warehouse, "SELECT ts, gpu_index, active_s, idle_held_s, free_s FROM gpu_daily"))
    # GPU 0 is busy 08:00-20:00: the samples at 08:10 .. 20:00 are active (72 of them on day 1).
    assert rows[(20, 0)][0] == 72 * STEP
    assert rows[(20, 0)][1] == (143 - 72) * STEP and rows[(20, 0)][2] == 0
    assert rows[(20, 1)] == (0, 0, 143 * STEP)  # GPU 1: no process, no memory: free


def test_daily_equals_the_same_figures_computed_from_raw_samples(warehouse, settings):
    """The daily rows are sums of hourly rows; recompute them straight from the raw samples."""
    con = connect(warehouse)
    con.execute("CREATE TEMP VIEW gpu_src AS SELECT * FROM gpu_samples")
    params = rollup_params(settings)
    columns = ("samples", "seconds", "active_s", "idle_held_s", "free_s", "unmeasured_s", "util_s", "util_samples",
               "util_seconds", "util_sum", "util_sumsq", "util_min", "util_max", "mem_used_byte_s", "temp_sum",
               "temp_max", "energy_j", "energy_s", "energy_resets")
    for day in (date(2026, 11, 20), date(2026, 11, 21)):
        start = datetime.combine(day, datetime.min.time())
        con.execute("CREATE OR REPLACE TEMP TABLE iv AS " + sql_file("gpu_intervals.sql"),
                    {"day_start": start, "day_end": start + timedelta(days=1), **params})
        raw = con.execute(
            "SELECT gpu_index, count(*), sum(seconds), "
            "sum(seconds) FILTER (WHERE state = 'active'), sum(seconds) FILTER (WHERE state = 'idle_held'), "
            "sum(seconds) FILTER (WHERE state = 'free'), sum(seconds) FILTER (WHERE state = 'unmeasured'), "
            "sum(util * seconds), count(util), sum(seconds) FILTER (WHERE util IS NOT NULL), sum(util), "
            "sum(util * util), "
            "min(util), max(util), sum(mem_used_bytes * seconds), sum(temperature_c), max(temperature_c), "
            "sum(energy_j), sum(energy_s), sum(energy_reset) FROM iv GROUP BY 1 ORDER BY 1").fetchall()
        daily = con.execute(f"SELECT gpu_index, {', '.join(columns)} FROM gpu_daily WHERE ts = ? ORDER BY 1",
                            [start]).fetchall()
        assert len(raw) == len(daily) == 2
        for r, d in zip(raw, daily):
            assert [x or 0 for x in d] == pytest.approx([x or 0 for x in r], rel=1e-12)
    con.close()


def test_one_gpu_hour_computed_by_hand(warehouse):
    """The test above checks the rollup against gpu_intervals.sql, the SQL the rollup itself runs; this one
    against figures worked out by hand. Day 1, 09:00-10:00, GPU 0: six samples (09:00 .. 09:50), each for
    the 600 s before it, all busy at 90 %, 4 GiB held by alice and bob, drawing 400 W at 70 degrees C."""
    (row,) = q(warehouse, "SELECT samples, seconds, active_s, idle_held_s, unmeasured_s, free_s, util_s, util_min, "
                          "util_max, mem_used_byte_s, energy_j, energy_s, energy_resets, temp_max FROM gpu_hourly "
                          "WHERE gpu_index = 0 AND ts = ?", [DAY1 + timedelta(hours=9)])
    assert row == pytest.approx((6, 3600, 3600, 0, 0, 0, 90 * 3600, 90, 90, 4 * GIB * 3600, 400 * 3600, 3600, 0, 70))


def test_utilization_and_memory_exactly_at_their_thresholds_are_not_enough(tmp_path, settings):
    """docs/sql.md: active is utilization *above* report.busy_threshold_pct (5 %), held is *more than*
    rollup.held_mem_mib (1024 MiB) used, or a process. A GPU exactly at both is free; just above either is
    not. Three samples 600 s apart: 1200 s counted per GPU."""
    gpus = [f.gpu(0, util=5.0, mem_used_bytes=1024 * 1024**2),  # at both thresholds: free
            f.gpu(1, util=5.5, mem_used_bytes=0),  # just above the utilization threshold: active
            f.gpu(2, util=5.0, mem_used_bytes=1024 * 1024**2 + 1)]  # one byte over the memory one: idle-held
    data = tmp_path / "data"
    store(data, [(t, f.document("gpu01", t, gpus=gpus)) for t in (DAY1 + timedelta(seconds=s) for s in (0, 600, 1200))])
    rollup(data, settings, now=DAY1 + timedelta(days=1, hours=1))
    assert q(data, "SELECT gpu_index, seconds, active_s, idle_held_s, unmeasured_s, free_s FROM gpu_daily "
                   "ORDER BY 1") == [(0, 1200, 0, 0, 0, 1200), (1, 1200, 1200, 0, 0, 0), (2, 1200, 0, 1200, 0, 0)]


RATES = {"rx_bytes": 1000, "tx_bytes": 2000, "read_bytes": 3000, "write_bytes": 5000}  # bytes/s, each its own


@pytest.fixture
def counter_host(tmp_path, settings):
    """A host without GPUs sampled every 10 min on day 1 from 00:00 to 03:50, whose network and disk counters
    each grow at their own rate (RATES); down from 01:00 to 02:00 (the 02:00 sample spans 4200 s); from 03:00 on
    its boot_time reads one second later (kernel jitter, no reboot). Rolled up; host_hourly by hour."""
    docs = []
    for k in range(4 * 3600 // STEP):
        t = DAY1 + timedelta(seconds=k * STEP)
        if t.hour == 1:
            continue
        doc = f.document("gpu01", t, cpu_busy=0.5)
        up = (t - f.BOOT).total_seconds()
        doc["network"]["interfaces"][0].update(rx_bytes=int(RATES["rx_bytes"] * up),
                                               tx_bytes=int(RATES["tx_bytes"] * up))
        doc["disks"]["io"][0].update(read_bytes=int(RATES["read_bytes"] * up),
                                     write_bytes=int(RATES["write_bytes"] * up))
        if t.hour >= 3:
            doc["host"]["boot_time"] = f.iso_z(f.BOOT + timedelta(seconds=1))
        docs.append((t, doc))
    data = tmp_path / "data"
    store(data, docs)
    rollup(data, settings, now=DAY1 + timedelta(days=1, hours=1))
    columns = ("seconds", "counter_resets", "cpu_busy_jiffies", "cpu_total_jiffies", "net_rx_bytes", "net_tx_bytes",
               "disk_read_bytes", "disk_write_bytes")
    return {r[0].hour: dict(zip(columns, r[1:])) for r in q(
        data, f"SELECT ts, {', '.join(columns)} FROM host_hourly ORDER BY ts")}


def test_network_and_disk_counters_are_each_their_own_rate_and_a_gap_scales_them_all(counter_host):
    """Each counter's hourly sum is its own rate times the seconds counted, read and write, received and sent
    alike. In the hour after the outage the first interval spans 4200 s and counts 600: every counter's delta
    is scaled to the 600 s, as the CPU's is (test_host_counters_survive_a_reboot_and_a_gap), not kept whole."""
    assert sorted(counter_host) == [0, 2, 3]
    for hour in (0, 2, 3):
        row, seconds = counter_host[hour], (3000 if hour == 0 else 3600)  # the first sample ever counts nothing
        assert row["seconds"] == seconds
        for counter, rate in RATES.items():
            column = {"rx_bytes": "net_rx_bytes", "tx_bytes": "net_tx_bytes", "read_bytes": "disk_read_bytes",
                      "write_bytes": "disk_write_bytes"}[counter]
            assert row[column] == pytest.approx(rate * seconds, rel=1e-9), (hour, column)
        assert row["cpu_total_jiffies"] == pytest.approx(16 * 100 * seconds, rel=1e-6)


def test_a_boot_time_that_moves_by_a_second_is_not_a_reboot(counter_host):
    """Some kernels report boot_time with a second of jitter: a reboot is a move of more than 5 s. At 03:00
    it moves by 1 s: no counter reset, and the interval's CPU, network and disk deltas are counted."""
    jitter = counter_host[3]
    assert sum(row["counter_resets"] for row in counter_host.values()) == 0
    assert jitter["cpu_total_jiffies"] == pytest.approx(16 * 100 * 3600, rel=1e-6)
    assert jitter["cpu_busy_jiffies"] == pytest.approx(0.5 * 16 * 100 * 3600, rel=1e-6)
    assert jitter["net_rx_bytes"] == pytest.approx(RATES["rx_bytes"] * 3600, rel=1e-9)


def test_energy_is_exact_and_resets_and_gaps_do_not_inflate_it(warehouse):
    rows = {(r[0].day, r[1]): r[2:] for r in q(
        warehouse, "SELECT ts, gpu_index, energy_j, energy_s, energy_resets FROM gpu_daily")}
    # Day 1: 143 intervals, one lost to the driver reload. Day 2: the gap interval is scaled to 600 s.
    for gpu, watts in POWER.items():
        assert rows[(20, gpu)] == pytest.approx((watts * 142 * STEP, 142 * STEP, 1))
        assert rows[(21, gpu)] == pytest.approx((watts * 138 * STEP, 138 * STEP, 0))
    hourly = q(warehouse, "SELECT min(energy_j), max(energy_j / nullif(energy_s, 0)) FROM gpu_hourly")
    assert hourly[0][0] >= 0 and hourly[0][1] == pytest.approx(POWER[0])


def steady_docs(gaps: bool):
    """gpu01 over day 1 every 300 s at constant rates: network and disk bytes (RATES), half its CPU, GPU 0 at
    400 W. With ``gaps``, some samples lack a counter, as when a subsystem fails or times out: the network at
    06:00, the disks at 09:00 and 09:05 (a 900 s span back to the last sample with them, over the 600 s cap),
    the CPU at 12:00, GPU 0's energy at 15:00."""
    for k in range(86400 // 300):
        t = DAY1 + timedelta(seconds=k * 300)
        up = (t - f.BOOT).total_seconds()
        doc = f.document("gpu01", t, cpu_busy=0.5, gpus=[
            f.gpu(0, util=90, power_w=POWER[0], energy_mj=int(POWER[0] * up * 1000))])
        doc["network"]["interfaces"][0].update(rx_bytes=int(RATES["rx_bytes"] * up),
                                               tx_bytes=int(RATES["tx_bytes"] * up))
        doc["disks"]["io"][0].update(read_bytes=int(RATES["read_bytes"] * up),
                                     write_bytes=int(RATES["write_bytes"] * up))
        if gaps:
            hhmm = (t.hour, t.minute)
            if hhmm == (6, 0):
                doc["network"] = None
            if hhmm in ((9, 0), (9, 5)):
                doc["disks"] = None
            if hhmm == (12, 0):
                doc["cpu"] = None
            if hhmm == (15, 0):
                doc["gpus"]["devices"][0]["energy_mj"] = None
        yield t, doc


HOST_TOTALS = ("seconds, counter_resets, cpu_busy_jiffies, cpu_total_jiffies, net_rx_bytes, net_tx_bytes, "
               "disk_read_bytes, disk_write_bytes")


def test_a_sample_without_a_counter_loses_none_of_the_days_bytes_jiffies_or_energy(tmp_path, settings):
    """Review: the deltas of cumulative counters were taken from the sample before, so a sample whose network
    (disks, CPU, GPU energy) came back null lost its own interval and the next one's: the day's bytes and
    energy read low (86,100,000 B received became 85,500,000 for one null network). The counters are
    cumulative: the next sample that has one takes the delta from the last one that had it, each counter
    its own, scaled to the seconds counted in between (two null disk samples span 900 s, counted in full)."""
    totals = {}
    for gaps in (False, True):
        data = tmp_path / f"gaps-{gaps}"
        store(data, steady_docs(gaps))
        rollup(data, settings, now=DAY1 + timedelta(days=1, hours=1))
        null = q(data, "SELECT count(*) FILTER (WHERE net_rx_bytes IS NULL), count(*) FILTER (WHERE disk_read_bytes "
                       "IS NULL), count(*) FILTER (WHERE cpu_total_jiffies IS NULL) FROM host_samples")
        assert null == [(1, 2, 1) if gaps else (0, 0, 0)]
        totals[gaps] = (q(data, f"SELECT {HOST_TOTALS} FROM host_daily"),
                        q(data, "SELECT seconds, energy_j, energy_s, energy_resets FROM gpu_daily"))
    seconds = 287 * 300  # the first sample stands for nothing
    assert totals[False] == (
        [(seconds, 0, 0.5 * 16 * f.USER_HZ * seconds, 16 * f.USER_HZ * seconds,
          *(RATES[c] * seconds for c in ("rx_bytes", "tx_bytes", "read_bytes", "write_bytes")))],
        [(seconds, POWER[0] * seconds, seconds, 0)])
    assert totals[False][0][0][4] == 86_100_000
    assert totals[True] == totals[False]  # exactly: whole numbers of bytes and joules


def test_a_reboot_inside_a_counter_gap_is_not_bridged(tmp_path, settings):
    """The delta back to the last sample with a counter is not taken across a reboot. gpu01 every 300 s from
    00:00 to 03:55, booted at 23:00 the day before, receiving 1,000 B/s; it reboots at 01:58 and then receives
    100,000 B/s. The 02:00 sample has neither a network nor a boot time (its counters restarted all the
    same): at 02:05 the received bytes (42,000,000) exceed the 01:55 ones (10,500,000), but they are of
    another boot, told by the two samples' boot times: not 31,500,000 bytes received. 02:00 and 02:05 lose
    their network deltas; the CPU's 02:00 went back (a counter reset), 02:05 counts from 02:00."""
    boot0, boot1 = DAY1 - timedelta(hours=1), DAY1 + timedelta(hours=1, minutes=58)
    docs = []
    for k in range(4 * 3600 // 300):
        t = DAY1 + timedelta(seconds=k * 300)
        boot, rate = (boot0, 1000) if t < boot1 else (boot1, 100_000)
        doc = f.document("gpu01", t, cpu_busy=0.5)
        doc["host"]["boot_time"] = f.iso_z(boot)
        doc["cpu"]["jiffies"] = f.jiffies(f.BOOT + (t - boot), 16, 0.5)
        doc["network"]["interfaces"][0].update(rx_bytes=int(rate * (t - boot).total_seconds()))
        if t == DAY1 + timedelta(hours=2):
            doc["host"]["boot_time"] = None
            doc["network"] = None
        docs.append((t, doc))
    data = tmp_path / "data"
    store(data, docs)
    rollup(data, settings, now=DAY1 + timedelta(days=1, hours=1))
    assert q(data, "SELECT min(net_rx_bytes) >= 0, max(net_rx_bytes) <= 100_000 * 3600 FROM host_hourly") == [
        (True, True)]
    (row,) = q(data, "SELECT seconds, counter_resets, net_rx_bytes, cpu_total_jiffies FROM host_daily")
    assert row == (47 * 300, 1, 23 * 300 * 1000 + 22 * 300 * 100_000, 46 * 300 * 16 * f.USER_HZ)


def test_host_counters_survive_a_reboot_and_a_gap(warehouse):
    rows = q(warehouse, "SELECT ts, cpu_busy_jiffies, cpu_total_jiffies, counter_resets, seconds FROM host_hourly "
                        "ORDER BY ts")
    assert all(busy >= 0 and total >= 0 for _, busy, total, _, _ in rows)
    assert sum(r[3] for r in rows) == 1  # the reboot
    for ts, busy, total, _, _ in rows:
        if total:
            assert busy / total == pytest.approx(0.5, abs=1e-3), ts
    # The hour after the outage: its first interval spans 4200 s but counts 600, jiffies scaled to match.
    gap_hour = next(r for r in rows if r[0] == OUTAGE[1])
    assert gap_hour[4] == 3600 and gap_hour[2] == pytest.approx(16 * 100 * 3600, rel=1e-3)


def test_users_share_a_gpu_by_the_memory_they_hold(warehouse):
    rows = {(r[0], r[1]): r[2:] for r in q(
        warehouse, "SELECT \"user\", ts::DATE::VARCHAR, gpu_index, active_s, idle_held_s, gpu_mem_max_bytes, energy_j "
                   "FROM user_gpu_daily WHERE gpu_index = 0")}
    alice, bob = rows[("alice", "2026-11-20")], rows[("bob", "2026-11-20")]
    assert alice[1] == pytest.approx(0.75 * 72 * STEP) and bob[1] == pytest.approx(0.25 * 72 * STEP)
    assert alice[2] == pytest.approx(0.75 * 71 * STEP) and bob[2] == pytest.approx(0.25 * 71 * STEP)
    assert (alice[3], bob[3]) == (3 * GIB, GIB)
    assert alice[4] + bob[4] == pytest.approx(POWER[0] * 142 * STEP)


def test_a_users_processes_add_up_to_the_users_share(warehouse):
    """process_gpu_daily splits each user's part of a GPU between the user's processes: summed per user,
    host and day they are user_gpu_daily's rows."""
    cols = "samples, active_s, idle_held_s, unmeasured_s, gpu_mem_byte_s, energy_j"
    by_user = q(warehouse, f'SELECT ts, "user", host, {cols} FROM user_gpu_daily ORDER BY ALL')
    by_process = q(warehouse, f'SELECT ts, "user", host, {", ".join(f"sum({c})" for c in cols.split(", "))} '
                              'FROM process_gpu_daily GROUP BY ALL ORDER BY ALL')
    assert [r[:3] for r in by_process] == [r[:3] for r in by_user] and len(by_user) == 4  # 2 users x 2 days
    for mine, theirs in zip(by_process, by_user):
        assert mine[3:] == pytest.approx(theirs[3:], rel=1e-9)
    assert q(warehouse, "SELECT DISTINCT pid, command, gpus, gpu_indexes FROM process_gpu_daily ORDER BY pid") == [
        (100, "python train.py", 1, [0]), (200, "python train.py", 1, [0])]


def test_each_process_gets_its_part_of_the_gpus_it_ran_on(tmp_path, settings):
    """Per process and day: its user's share of each GPU split between the user's processes there by the memory
    each holds (equally when none reports memory); a process on two GPUs is one row; a pid given to a process
    that starts later is another process; one that renames itself (setproctitle) stays one, under its last
    command; its start is the earliest reading (the boot time it is read from may move by a second)."""
    def proc(pid, user, command, mem, started="2026-11-19T23:00:00Z"):
        return f.gpu_process(pid, user, command, gpu_mem_bytes=mem, started_at=started)

    def docs():
        for k in range(6):
            t = DAY1 + timedelta(seconds=k * STEP)
            ddp = proc(10, "alice", "python train.py --ddp", 6 * GIB,
                       "2026-11-19T23:00:01Z" if k == 3 else "2026-11-19T23:00:00Z")
            dave = proc(40, "dave", "python a.py", GIB, "2026-11-20T00:00:00Z") if k < 3 else \
                proc(40, "dave", "python b.py", GIB, "2026-11-20T00:25:00Z")
            erin = proc(50, "erin", f"trainer epoch {1 + k // 3}", GIB)
            yield t, f.document("gpu01", t, gpus=[
                f.gpu(0, util=90, processes=[ddp, proc(11, "alice", "python eval.py", 2 * GIB),
                                             proc(20, "bob", "python b.py", 8 * GIB)]),
                f.gpu(1, util=90, processes=[proc(30, "carol", "python x.py", None),
                                             proc(31, "carol", "python y.py", None)]),
                f.gpu(2, util=90, processes=[ddp]),
                f.gpu(3, util=90, processes=[dave]),
                f.gpu(4, util=90, processes=[erin]),
            ])

    data = tmp_path / "data"
    store(data, docs())
    rollup(data, settings, now=DAY1 + timedelta(days=1, hours=1))
    rows = {(r[0], r[1]): r[2:] for r in q(data, """
        SELECT pid, command, "user", started_at, first_seen, last_seen, samples, gpus, gpu_indexes, active_s,
               gpu_mem_max_bytes, gpu_mem_byte_s
        FROM process_gpu_daily""")}
    seconds = 5 * STEP  # the first sample ever stands for no time
    start, last = DAY1, DAY1 + timedelta(seconds=5 * STEP)
    started = datetime(2026, 11, 19, 23)
    assert rows[(10, "python train.py --ddp")] == ("alice", started, start, last, 6, 2, [0, 2],
                                                    pytest.approx(seconds * (6 / 8 * 8 / 16 + 1)), 6 * GIB,
                                                    pytest.approx(2 * 6 * GIB * seconds))
    assert rows[(11, "python eval.py")][7] == pytest.approx(seconds * 2 / 8 * 8 / 16)
    assert rows[(20, "python b.py")][7] == pytest.approx(seconds / 2)
    assert rows[(30, "python x.py")][7] == rows[(31, "python y.py")][7] == pytest.approx(seconds / 2)
    assert rows[(30, "python x.py")][8:] == (0, 0)  # no memory reported
    a, b = rows[(40, "python a.py")], rows[(40, "python b.py")]
    assert (a[1:6], a[7]) == ((DAY1, start, start + timedelta(seconds=2 * STEP), 3, 1), pytest.approx(2 * STEP))
    assert (b[1:6], b[7]) == ((DAY1 + timedelta(minutes=25), start + timedelta(seconds=3 * STEP), last, 3, 1),
                              pytest.approx(3 * STEP))
    assert (50, "trainer epoch 1") not in rows and rows[(50, "trainer epoch 2")][2:5] == (start, last, 6)
    assert len(rows) == 8
    total = q(data, "SELECT sum(active_s) FROM process_gpu_daily")[0][0]
    assert total == pytest.approx(q(data, "SELECT sum(active_s) FROM gpu_daily")[0][0]) == 5 * seconds


def test_a_process_stays_one_across_a_jittering_start_unread_starts_and_midnight(tmp_path, settings):
    """Review: the start read 22:59:59 at one run and 23:00:00 at the next (the boot time it comes from jitters
    by a second) made two processes, each with half the GPU-hours; so did a sample without a start (the run
    before the collector sent it, the last one as the process exited). Over two days, the second day's row takes
    the first day's start, so the whole job is one group of (host, pid, user, started_at)."""
    steps = 2 * 86400 // STEP

    def docs():
        for k in range(steps):
            t = DAY1 + timedelta(seconds=k * STEP)
            started = None if k in (0, steps - 1) else "2026-11-19T22:59:59Z" if k % 2 else "2026-11-19T23:00:00Z"
            yield t, f.document("gpu01", t, gpus=[f.gpu(0, util=90, processes=[
                f.gpu_process(100, "alice", f"python train.py --step {k}", GIB, started_at=started)])])

    data = tmp_path / "data"
    store(data, docs())
    rollup(data, settings, now=DAY1 + timedelta(days=2, hours=1))
    assert q(data, "SELECT ts::DATE::VARCHAR, started_at, samples, command FROM process_gpu_daily ORDER BY ts") == [
        ("2026-11-20", datetime(2026, 11, 19, 22, 59, 59), 144, "python train.py --step 143"),
        ("2026-11-21", datetime(2026, 11, 19, 22, 59, 59), 144, f"python train.py --step {steps - 1}")]
    (job,) = q(data, 'SELECT sum(active_s) FROM process_gpu_daily GROUP BY host, pid, "user", started_at')
    assert job[0] == pytest.approx((steps - 1) * STEP)


@pytest.mark.parametrize("down_days", [0, 1, 3])
def test_a_later_day_takes_the_start_an_earlier_day_read(tmp_path, settings, down_days):
    """Review: day 1 read the start as 22:59:59 only, the last day as 23:00:00 only (a clock step between): the
    last day's row takes day 1's start, also across days the host was down (no row to take it from)."""
    last = 1 + down_days

    def docs():
        for day in (0, last):
            for k in range(0, 86400 // STEP, 6):  # hourly
                t = DAY1 + timedelta(days=day, seconds=k * STEP)
                started = "2026-11-19T22:59:59Z" if day == 0 else "2026-11-19T23:00:00Z"
                yield t, f.document("gpu01", t, gpus=[f.gpu(0, util=90, processes=[
                    f.gpu_process(100, "alice", "python train.py", GIB, started_at=started)])])

    data = tmp_path / "data"
    store(data, docs())
    rollup(data, settings, now=DAY1 + timedelta(days=last + 1, hours=1))
    assert q(data, "SELECT ts::DATE::VARCHAR, started_at FROM process_gpu_daily ORDER BY ts") == [
        (str(DAY1.date() + timedelta(days=day)), datetime(2026, 11, 19, 22, 59, 59)) for day in (0, last)]


def test_rolling_up_again_changes_nothing(warehouse, settings):
    before = {t: q(warehouse, f"SELECT * FROM {t} ORDER BY ALL") for t in
              ("gpu_hourly", "gpu_daily", "host_hourly", "host_daily", "user_gpu_daily", "process_gpu_daily")}
    report = rollup(warehouse, settings, now=DAY1 + timedelta(days=2, hours=2))
    assert report.days_rolled == []
    after = {t: q(warehouse, f"SELECT * FROM {t} ORDER BY ALL") for t in before}
    assert after == before


def test_a_past_day_is_compacted_and_today_is_left_alone(tmp_path, settings):
    data = tmp_path / "data"
    for minutes in (0, 10, 20, 60 * 24, 60 * 24 + 10):
        at = DAY1 + timedelta(minutes=minutes)
        f.spool_run(data, at, [f.ok("gpu01", at, f.document("gpu01", at, gpus=[f.gpu(0, util=50)])),
                               f.unreachable("lost01", at)])
        ingest_pending(data)
    counts = {t: q(data, f"SELECT count(*) FROM {t}") for t in ("host_status", "gpu_samples", "runs")}
    report = rollup(data, settings, now=DAY1 + timedelta(days=1, hours=1))
    assert report.compacted["gpu_samples"] == 2
    assert [len(partitions.parquet_files(p)) for p in partitions.day_dirs(data, "gpu_samples").values()] == [1, 2]
    assert {t: q(data, f"SELECT count(*) FROM {t}") for t in counts} == counts


def test_retention_drops_old_tiers_but_never_raw_days_not_rolled_up(warehouse, settings):
    later = DAY1 + timedelta(days=40)
    # A late sample lands in day 1 after its rollup: that day must not be deleted before it is rolled up.
    late = partitions.day_dir(warehouse, "gpu_samples", date(2026, 11, 20)) / "late.parquet"
    os.link(next(late.parent.glob("*.parquet")), late)
    os.utime(late)
    report = RollupReport()
    apply_retention(warehouse, settings, later.date(), report)
    assert sorted(partitions.day_dirs(warehouse, "gpu_samples")) == [date(2026, 11, 20)]
    assert report.deleted["host_samples"] == 1 and report.deleted["gpu_samples"] == 1  # day 2 only
    assert "gpu_hourly" not in report.deleted and len(partitions.day_dirs(warehouse, "gpu_hourly")) == 2
    late.unlink()
    report = rollup(warehouse, settings, now=later)
    assert not partitions.day_dirs(warehouse, "gpu_samples")
    assert q(warehouse, "SELECT count(*) FROM gpu_daily") == [(4,)]
    assert not list((warehouse / ".rolled").iterdir())  # the days' markers went with their raw samples
    # The daily tier outlives the hourly one.
    rollup(warehouse, settings, now=DAY1 + timedelta(days=400))
    assert q(warehouse, "SELECT count(*) FROM gpu_hourly") == [(0,)]
    assert q(warehouse, "SELECT count(*) FROM gpu_daily") == [(4,)]


def test_a_crash_in_the_middle_of_a_swap_leaves_the_warehouse_readable(warehouse, settings, monkeypatch):
    expected = q(warehouse, "SELECT * FROM gpu_daily ORDER BY ALL")
    day = partitions.day_dir(warehouse, "gpu_daily", date(2026, 11, 21))
    os.utime(next(partitions.day_dir(warehouse, "gpu_samples", date(2026, 11, 21)).glob("*.parquet")))
    real_rename, calls = os.rename, []

    def crash_on_second_rename(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real_rename(src, dst)

    monkeypatch.setattr(partitions.os, "rename", crash_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        rollup(warehouse, settings, now=DAY1 + timedelta(days=2, hours=3))
    monkeypatch.setattr(partitions.os, "rename", real_rename)
    # The day's swap was cut between its two renames: that day is hidden for now, never half-read...
    assert q(warehouse, "SELECT DISTINCT ts::DATE FROM gpu_hourly") == [(date(2026, 11, 20),)]
    # ...and the next rollup finishes the swap and redoes the work.
    report = rollup(warehouse, settings, now=DAY1 + timedelta(days=2, hours=3))
    assert report.recovered and day.exists()
    assert q(warehouse, "SELECT * FROM gpu_daily ORDER BY ALL") == expected


def test_rollup_is_due_every_so_many_minutes(tmp_path, settings):
    assert rollup_due(tmp_path, settings)
    rollup(tmp_path, settings, now=DAY1)
    assert not rollup_due(tmp_path, settings, now=DAY1 + timedelta(minutes=59))
    assert rollup_due(tmp_path, settings, now=DAY1 + timedelta(minutes=60))


def late_sample(data, at, host="gpu01", util=50):
    """One more sample, stored as a run that came late (a host result kept in the spool)."""
    doc = f.document(host, at, gpus=[f.gpu(0, util=util), f.gpu(1, util=0)])
    con = duckdb.connect()
    try:
        for table, rows in host_rows(f.ok(host, at, doc), f"late-{at:%H%M}").items():
            write_table(con, data, table, f"late-{at:%Y%m%d%H%M}", rows)
    finally:
        con.close()


def test_a_crash_between_a_days_hourly_and_daily_rollups_is_redone(tmp_path, settings, monkeypatch):
    """The hourly file alone said a day was rolled up: killed before host_daily was written, the day was never
    rolled up again, and once retention took the raw samples its host_daily was gone for good."""
    from fleetscope.warehouse import rollup as rollup_module

    data = tmp_path / "data"
    store(data, fleet_docs())
    real = rollup_module._write_day

    def killed_before_host_daily(con, data_dir, table, day, *args):
        if table == "host_daily" and day == date(2026, 11, 21):
            raise KeyboardInterrupt("killed")
        return real(con, data_dir, table, day, *args)

    monkeypatch.setattr(rollup_module, "_write_day", killed_before_host_daily)
    with pytest.raises(KeyboardInterrupt):
        rollup(data, settings, now=DAY1 + timedelta(days=2, hours=1))
    monkeypatch.setattr(rollup_module, "_write_day", real)
    assert q(data, "SELECT DISTINCT ts::DATE FROM host_daily") == [(date(2026, 11, 20),)]
    report = rollup(data, settings, now=DAY1 + timedelta(days=2, hours=2))
    assert "2026-11-21" in report.days_rolled
    assert q(data, "SELECT DISTINCT ts::DATE FROM host_daily ORDER BY 1") == [(date(2026, 11, 20),),
                                                                             (date(2026, 11, 21),)]


def test_late_samples_at_the_end_of_a_day_roll_up_the_next_day_too(warehouse, settings):
    """Each day's first interval reaches back into the day before: a late sample at 23:55 shortens the next
    day's first interval; rolling up only its own day counted those 300 s twice."""
    before = dict(((d, g), s) for d, g, s in q(warehouse, "SELECT ts::DATE, gpu_index, seconds FROM gpu_daily"))
    late_sample(warehouse, DAY1 + timedelta(hours=23, minutes=55))
    report = rollup(warehouse, settings, now=DAY1 + timedelta(days=2, hours=2))
    assert report.days_rolled == ["2026-11-20", "2026-11-21"]
    after = dict(((d, g), s) for d, g, s in q(warehouse, "SELECT ts::DATE, gpu_index, seconds FROM gpu_daily"))
    for gpu in (0, 1):
        assert after[(date(2026, 11, 20), gpu)] == before[(date(2026, 11, 20), gpu)] + 300
        assert after[(date(2026, 11, 21), gpu)] == before[(date(2026, 11, 21), gpu)] - 300


def test_a_late_run_for_a_day_whose_raw_samples_are_gone_keeps_that_days_rollups(warehouse, settings):
    """Rolled up again from the late run's samples alone, the day's rollups were replaced by that run's."""
    later = DAY1 + timedelta(days=40)
    rollup(warehouse, settings, now=later)  # raw_days = 30: the raw samples of both days are deleted
    assert not partitions.day_dirs(warehouse, "gpu_samples")
    kept = q(warehouse, "SELECT * FROM gpu_daily ORDER BY ALL")
    late_sample(warehouse, DAY1 + timedelta(hours=9), host="late01")
    report = rollup(warehouse, settings, now=later + timedelta(hours=1))
    assert report.days_rolled == []
    assert "late samples for 2026-11-20" in report.warnings()[0]
    assert q(warehouse, "SELECT * FROM gpu_daily ORDER BY ALL") == kept
    assert not partitions.day_dirs(warehouse, "gpu_samples")  # left to retention, which took them


def test_a_damaged_raw_file_past_the_raw_window_is_said_not_taken_for_late_samples(warehouse, settings):
    """Review: a raw file of a day past raw_days that could not be read was reported as "late samples", and
    retention then deleted the day without a word on the damage. Now the warning names the file's error."""
    rollup(warehouse, settings, now=DAY1 + timedelta(days=2, hours=2))
    kept = q(warehouse, "SELECT * FROM gpu_daily ORDER BY ALL")
    (file, *_) = partitions.parquet_files(partitions.day_dirs(warehouse, "gpu_samples")[DAY1.date()])
    file.write_bytes(file.read_bytes()[:100])  # cut short: newer than the day's rollups, and unreadable
    report = rollup(warehouse, settings, now=DAY1 + timedelta(days=40))
    (warning,) = report.warnings()
    assert warning.startswith("a raw file of 2026-11-20, past rollup.raw_days, could not be read (") and \
        warning.endswith("): the day's rollups are kept as they were, and retention deletes its raw files"), warning
    assert report.late == [] and list(report.unreadable) == ["2026-11-20"]
    assert q(warehouse, "SELECT * FROM gpu_daily ORDER BY ALL") == kept


def test_a_damaged_raw_file_of_the_day_before_is_told_under_its_own_day(warehouse, settings):
    """Review: checking whether a day with late samples could be rolled up again reads the day before too; an
    error there was told under the late day, whose late samples then went unsaid."""
    rollup(warehouse, settings, now=DAY1 + timedelta(days=2, hours=2))
    days = partitions.day_dirs(warehouse, "gpu_samples")
    (first, *_) = partitions.parquet_files(days[DAY1.date()])
    stat = first.stat()
    first.write_bytes(first.read_bytes()[:100])
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # damaged, not newer than its rollups
    (second, *_) = partitions.parquet_files(days[DAY1.date() + timedelta(days=1)])
    os.utime(second)  # newer: as a late run's samples
    report = rollup(warehouse, settings, now=DAY1 + timedelta(days=40))
    assert list(report.unreadable) == ["2026-11-20"] and report.late == ["2026-11-21"], report


def _as_an_older_fleetscope_wrote_them(data):
    """The rollups without unmeasured_s, util_samples and util_seconds, the .rolled markers empty."""
    new = {"gpu_hourly": "unmeasured_s, util_samples, util_seconds", "user_gpu_daily": "unmeasured_s"}
    new["gpu_daily"] = new["gpu_hourly"]
    con = duckdb.connect()
    for table, columns in new.items():
        for folder in partitions.day_dirs(data, table).values():
            for file in partitions.parquet_files(folder):
                con.execute(f"COPY (SELECT * EXCLUDE ({columns}) FROM '{file}') TO '{file}.old' (FORMAT parquet)")
                os.replace(f"{file}.old", file)
    con.close()
    for marker in (data / ROLLED_DIR).iterdir():
        marker.write_bytes(b"")
        os.utime(marker, (1e9 + 3e8, 2e9))  # newer than the raw files: only the format says "again"


DAILY_FIGURES = ("SELECT ts, gpu_index, samples, seconds, active_s, idle_held_s, free_s, util_s "
                 "FROM gpu_daily ORDER BY 1, 2")


def test_an_upgrade_rolls_up_again_the_days_whose_raw_samples_are_kept(warehouse, settings):
    """Rollups an older fleetscope wrote (no unmeasured_s, util_samples, util_seconds; an empty .rolled
    marker) are written again, once, where the raw samples are there, with the same figures."""
    before = q(warehouse, DAILY_FIGURES)
    _as_an_older_fleetscope_wrote_them(warehouse)
    assert q(warehouse, "SELECT count(*) FROM gpu_daily WHERE util_seconds IS NULL")[0][0] == 4  # padded views
    report = rollup(warehouse, settings, now=DAY1 + timedelta(days=2, hours=2))
    assert report.days_rolled == ["2026-11-20", "2026-11-21"]
    assert q(warehouse, "SELECT ts::DATE, gpu_index, util_samples, unmeasured_s FROM gpu_daily ORDER BY 1, 2") == [
        (date(2026, 11, 20), 0, 144, 0), (date(2026, 11, 20), 1, 144, 0),
        (date(2026, 11, 21), 0, 138, 0), (date(2026, 11, 21), 1, 138, 0)]
    assert q(warehouse, DAILY_FIGURES) == before
    assert {m.read_text().strip() for m in (warehouse / ROLLED_DIR).iterdir()} == {ROLLUP_FORMAT}
    assert rollup(warehouse, settings, now=DAY1 + timedelta(days=2, hours=3)).days_rolled == []  # once


def test_days_rolled_up_under_the_rules_before_are_rolled_up_again(warehouse, settings):
    """Format 3 changed what values count (24 h gaps, busy counts that go back), 4 (counter deltas back to
    the last sample with the counter) and 5 added process_gpu_daily: days an older rollup wrote, whose raw
    samples are kept, are rolled up again once, so the report's raw counts agree with them and the new
    table has them."""
    for marker in (warehouse / ROLLED_DIR).iterdir():
        marker.write_text("4\n")
    shutil.rmtree(warehouse / "process_gpu_daily")  # as format 4 left it
    report = rollup(warehouse, settings, now=DAY1 + timedelta(days=2, hours=2))
    assert report.days_rolled == ["2026-11-20", "2026-11-21"] and ROLLUP_FORMAT == "5"
    assert report.upgraded == report.days_rolled and "(2 again, once, for this version's rollup format)" in \
        report.summary()
    assert {m.read_text().strip() for m in (warehouse / ROLLED_DIR).iterdir()} == {"5"}
    assert q(warehouse, "SELECT DISTINCT ts::DATE::VARCHAR FROM process_gpu_daily ORDER BY 1") == [
        ("2026-11-20",), ("2026-11-21",)]


def test_an_upgrade_rolls_up_again_the_oldest_day_of_the_raw_window(warehouse, settings):
    """Review (retention replay): the oldest day of the raw window kept its old format although the day
    before it, kept whole for its first intervals, was there: only days whose day before was in the window
    were rolled up again. Here day 2 is the oldest, day 1 the day kept before it, and the day before day 1
    has rollups and no raw samples (retention took them): day 1 keeps its rollups, day 2 is rolled again."""
    day0 = date(2026, 11, 19)
    con = duckdb.connect()
    try:  # day 1's daily rows, a day earlier: the day before day 1, rolled up, its raw samples gone
        for table in ("gpu_daily", "host_daily"):
            (src,) = partitions.parquet_files(partitions.day_dir(warehouse, table, DAY1.date()))
            folder = partitions.day_dir(warehouse, table, day0)
            folder.mkdir(parents=True)
            con.execute(f"COPY (SELECT * REPLACE (ts - INTERVAL 1 DAY AS ts) FROM '{src}') "
                        f"TO '{folder / ROLLUP_FILE}' (FORMAT parquet)")
    finally:
        con.close()
    for marker in (warehouse / ROLLED_DIR).iterdir():
        marker.write_text("2\n")
    (warehouse / ROLLED_DIR / day0.isoformat()).write_text("2\n")
    before = q(warehouse, DAILY_FIGURES)
    report = rollup(warehouse, settings, now=datetime(2026, 12, 21, 1))  # raw window from day 2, 11-21
    assert report.days_rolled == ["2026-11-21"]
    assert {d: (warehouse / ROLLED_DIR / d).read_text().strip() for d in ("2026-11-20", "2026-11-21")} == {
        "2026-11-20": "2", "2026-11-21": ROLLUP_FORMAT}
    assert q(warehouse, DAILY_FIGURES) == before  # this fleet's figures are the same under either format


def test_an_upgrade_from_before_the_markers_keeps_the_oldest_raw_days_rollups(warehouse, settings):
    """Upgrade review: a warehouse from before .rolled/ markers (75ce660) had every raw day rolled up again,
    the oldest of the raw window too, whose day before retention had taken: its first intervals lost their
    predecessor, for good (-1,800 s and -0.034 kWh of gpu_daily for 6 GPUs there), without a word."""
    shutil.rmtree(warehouse / ROLLED_DIR)
    for table in ("gpu_samples", "gpu_processes", "host_samples"):  # day 1's raw samples: retention took them
        partitions.remove_day(partitions.day_dir(warehouse, table, date(2026, 11, 20)))
    before = q(warehouse, DAILY_FIGURES)
    now = datetime(2026, 12, 21, 1)  # the raw window from day 2 (11-21) on: it is the oldest raw day
    assert rollup(warehouse, settings, now=now).days_rolled == []
    assert q(warehouse, DAILY_FIGURES) == before
    assert (warehouse / ROLLED_DIR / "2026-11-21").read_text() == ""  # as an older fleetscope wrote it
    assert rollup(warehouse, settings, now=now + timedelta(hours=1)).days_rolled == []  # and it stays so
    (partitions.day_dir(warehouse, "host_daily", date(2026, 11, 21)) / ROLLUP_FILE).unlink()
    (warehouse / ROLLED_DIR / "2026-11-21").unlink()  # a crash between two tables, no marker: rolled again
    again = rollup(warehouse, settings, now=now + timedelta(hours=2))
    assert again.days_rolled == ["2026-11-21"] and again.upgraded == []  # not an upgrade: a day half written


def test_a_late_run_for_a_day_retention_took_is_still_said_after_the_upgrade_rule(warehouse, settings):
    """Diff review: retention deletes a day's marker with its raw samples, so a late run for day 2 found it
    unmarked with whole rollups, and the rule for warehouses from before the markers took it: no warning."""
    rollup(warehouse, settings, now=DAY1 + timedelta(days=40))
    late_sample(warehouse, DAY1 + timedelta(days=1, hours=9), host="late01")
    report = rollup(warehouse, settings, now=DAY1 + timedelta(days=40, hours=1))
    assert report.late == ["2026-11-21"] and "late samples for 2026-11-21" in report.warnings()[0]


def test_an_upgrade_from_before_the_markers_with_a_short_hourly_tier_keeps_the_oldest_raw_day(tmp_path,
                                                                                             warehouse):
    """Diff review: with rollup.hourly_days under raw_days (allowed), the day's hourly files are gone, and the
    rule asked for them: the oldest raw day was rolled up again, losing its first intervals."""
    cfg = tmp_path / "short.toml"
    cfg.write_text("[rollup]\nmax_interval_s = 600\nheld_mem_mib = 1024\nhourly_days = 7\n")
    short = load(cfg)
    shutil.rmtree(warehouse / ROLLED_DIR)
    for table in ("gpu_samples", "gpu_processes", "host_samples"):
        partitions.remove_day(partitions.day_dir(warehouse, table, date(2026, 11, 20)))
    for table in ("gpu_hourly", "host_hourly"):
        partitions.remove_day(partitions.day_dir(warehouse, table, date(2026, 11, 21)))
    before = q(warehouse, DAILY_FIGURES)
    assert rollup(warehouse, short, now=datetime(2026, 12, 21, 1)).days_rolled == []
    assert q(warehouse, DAILY_FIGURES) == before


def test_an_upgrade_keeps_the_rows_of_a_day_it_cannot_roll_up_whole(warehouse, settings):
    """Day 1's raw samples are gone (retention): day 1 keeps its rows, and so does day 2, whose first
    interval reaches back into day 1 (rolled up again, it would lose those seconds). Their new columns stay
    NULL, and the report's queries read such rows as they were written: every second counted."""
    before = q(warehouse, DAILY_FIGURES)
    _as_an_older_fleetscope_wrote_them(warehouse)
    for table in ("gpu_samples", "gpu_processes", "host_samples"):
        partitions.remove_day(partitions.day_dir(warehouse, table, date(2026, 11, 20)))
    assert rollup(warehouse, settings, now=DAY1 + timedelta(days=2, hours=2)).days_rolled == []
    assert q(warehouse, DAILY_FIGURES) == before
    assert q(warehouse, "SELECT count(*) FROM gpu_daily WHERE util_seconds IS NULL AND unmeasured_s IS NULL")[0][0] == 4
    assert {m.read_text() for m in (warehouse / ROLLED_DIR).iterdir()} == {""}
    con = connect(warehouse)
    try:
        rows = fetch(con, "fleet_daily", {"since": DAY1, "bucket_s": 86400})
        sums = con.execute("SELECT sum(util_s), sum(seconds) FROM gpu_daily GROUP BY ts ORDER BY ts").fetchall()
    finally:
        con.close()
    assert [r["gpu_util_pct"] for r in rows] == pytest.approx([u / s for u, s in sums]) and sums[0][0] > 0


def test_a_rollups_source_over_files_without_a_newer_column_reads_it_as_null(warehouse):
    """rollup's own reads (gpu_src, gpu_hourly_day...) over files an older fleetscope wrote."""
    (file,) = partitions.parquet_files(partitions.day_dir(warehouse, "gpu_hourly", date(2026, 11, 20)))
    con = duckdb.connect()
    try:
        con.execute(f"COPY (SELECT * EXCLUDE (unmeasured_s, util_samples, util_seconds) FROM '{file}') "
                    f"TO '{file}.old' (FORMAT parquet)")
        _source_view(con, "old_hourly", "gpu_hourly", [Path(f"{file}.old")])
        nulls, rows, util_s = con.execute(
            "SELECT count(*) FILTER (WHERE util_seconds IS NULL AND unmeasured_s IS NULL), count(*), sum(util_s) "
            "FROM old_hourly").fetchone()
    finally:
        con.close()
    assert nulls == rows == 48 and util_s > 0  # two GPUs x 24 hours, the other columns read as they are


def test_an_upgrade_does_not_take_a_late_runs_samples_for_the_day_before(warehouse, settings):
    """Day 1 is past rollup.raw_days and its raw samples are gone, but a run kept in the spool brings one
    late sample of it: that folder is not day 1's raw samples, so day 2 is still not rolled up again."""
    before = q(warehouse, DAILY_FIGURES)
    _as_an_older_fleetscope_wrote_them(warehouse)
    for table in ("gpu_samples", "gpu_processes", "host_samples"):
        partitions.remove_day(partitions.day_dir(warehouse, table, date(2026, 11, 20)))
    late_sample(warehouse, DAY1 + timedelta(hours=23, minutes=58))
    report = rollup(warehouse, settings, now=DAY1 + timedelta(days=31))  # raw window: day 2 on
    assert report.days_rolled == []
    assert q(warehouse, DAILY_FIGURES) == before


def test_a_day_rolled_up_in_part_before_rollups_paused_is_rolled_up_whole_after(tmp_path, settings):
    """Rolled up at noon, then no rollup for 40 days (a run stuck in the spool, a controller off): the day's
    raw samples were never deleted, so it is rolled up again, whole. It was taken for a late run's day: its
    rollups kept the morning only, and retention then deleted the afternoon's raw samples for good."""
    data = tmp_path / "data"
    docs = list(fleet_docs())[:144]  # day 1
    store(data, docs[:72])
    rollup(data, settings, now=DAY1 + timedelta(hours=12))
    store(data, docs[72:], name="afternoon")
    report = rollup(data, settings, now=DAY1 + timedelta(days=40))
    assert report.late == [] and "2026-11-20" in report.days_rolled
    assert q(data, "SELECT samples, seconds FROM host_daily") == [(144, 143 * STEP)]
    assert not partitions.day_dirs(data, "host_samples")  # and only now, rolled up whole, deleted


def test_a_late_sample_for_a_day_kept_only_in_the_daily_tier_leaves_it_as_it_was(warehouse, settings):
    """Past rollup.hourly_days only the daily rows are left: one late sample rolled the day up again from
    itself alone, and replaced the day's daily rows (kept for ever) with one sample's."""
    rollup(warehouse, settings, now=DAY1 + timedelta(days=400))
    assert q(warehouse, "SELECT count(*) FROM gpu_hourly") == [(0,)]
    kept = q(warehouse, "SELECT * FROM host_daily ORDER BY ALL"), q(warehouse, DAILY_FIGURES)
    late_sample(warehouse, DAY1 + timedelta(days=1, hours=10, minutes=5))
    report = rollup(warehouse, settings, now=DAY1 + timedelta(days=400, hours=1))
    assert report.days_rolled == [] and report.late == ["2026-11-21"]
    assert (q(warehouse, "SELECT * FROM host_daily ORDER BY ALL"), q(warehouse, DAILY_FIGURES)) == kept


def test_the_oldest_raw_day_keeps_the_day_before_for_its_first_intervals(warehouse, settings):
    """Day 2 is the oldest day in the raw window (raw_days = 30). Another host's late sample rolls it up
    again; its first interval's predecessor is day 1's last sample, which retention now keeps."""
    rollup(warehouse, settings, now=DAY1 + timedelta(days=31, hours=1))  # cutoff: day 2
    assert sorted(partitions.day_dirs(warehouse, "host_samples")) == [date(2026, 11, 20), date(2026, 11, 21)]
    before = q(warehouse, "SELECT samples, seconds FROM host_daily WHERE host = 'gpu01' ORDER BY ts")
    late_sample(warehouse, DAY1 + timedelta(days=1, hours=9), host="late01")
    report = rollup(warehouse, settings, now=DAY1 + timedelta(days=31, hours=2))
    assert "2026-11-21" in report.days_rolled
    assert q(warehouse, "SELECT samples, seconds FROM host_daily WHERE host = 'gpu01' ORDER BY ts") == before
    rollup(warehouse, settings, now=DAY1 + timedelta(days=32, hours=1))  # day 1 leaves once day 2 does
    assert sorted(partitions.day_dirs(warehouse, "host_samples")) == [date(2026, 11, 21)]


def test_the_extra_raw_day_is_not_rolled_up_again_without_the_day_before(warehouse, settings):
    """Day 2 is kept one day past the window (the day before the oldest), day 1 is gone: rolled up again for
    another host's late sample, day 2's first intervals would lose their predecessors. It keeps its rollups."""
    now = datetime(2026, 12, 22, 1)  # raw window from 11-22; day 2 (11-21) kept as its day before
    rollup(warehouse, settings, now=now)
    assert sorted(partitions.day_dirs(warehouse, "host_samples")) == [date(2026, 11, 21)]
    before = q(warehouse, "SELECT * FROM host_daily ORDER BY ALL")
    late_sample(warehouse, DAY1 + timedelta(days=1, hours=9), host="late01")
    report = rollup(warehouse, settings, now=now + timedelta(hours=1))
    assert report.days_rolled == [] and report.late == ["2026-11-21"]
    assert q(warehouse, "SELECT * FROM host_daily ORDER BY ALL") == before


def test_the_extra_raw_day_is_not_rolled_up_again_with_a_late_run_of_the_day_before(warehouse, settings):
    """Review (retention replay): as above, with a late sample of day 1 too, in the same pass. Day 1's folder
    was then there again, holding that run's samples alone: day 2 was rolled up again with the late sample as
    its first intervals' predecessor (an hour of 3,900 s, energy and jiffies counted from it), in the daily
    tier, which is kept forever. Both days keep their rollups and are reported late."""
    now = datetime(2026, 12, 22, 1)
    rollup(warehouse, settings, now=now)
    before = q(warehouse, "SELECT * FROM host_daily ORDER BY ALL")
    hourly = q(warehouse, "SELECT * FROM host_hourly ORDER BY ALL")
    late_sample(warehouse, DAY1 + timedelta(hours=12), host="late01")
    late_sample(warehouse, DAY1 + timedelta(days=1, hours=9), host="late01")
    report = rollup(warehouse, settings, now=now + timedelta(hours=1))
    assert report.days_rolled == [] and sorted(report.late) == ["2026-11-20", "2026-11-21"]
    assert q(warehouse, "SELECT * FROM host_daily ORDER BY ALL") == before
    assert q(warehouse, "SELECT * FROM host_hourly ORDER BY ALL") == hourly


def test_a_swap_cut_between_its_two_renames_is_finished_not_dropped(tmp_path, monkeypatch):
    """A kill between swap_in's two renames leaves the old day as .old-date=D and the new one as .new-date=D,
    no date=D: recover must put the new day in place. Dropping both (or the new one) loses the day for good
    where it cannot be computed again: runs, hosts and admin_actions are compacted this way and kept nowhere
    else, and a rollup past rollup.raw_days has no raw samples left to redo."""
    final = partitions.day_dir(tmp_path, "runs", date(2026, 11, 20))
    final.mkdir(parents=True)
    (final / "run-1.parquet").write_bytes(b"old")
    (partitions.staging_dir(final) / "compacted.parquet").write_bytes(b"new")
    real_rename = os.rename

    def killed_on_second_rename(src, dst):
        if Path(src).name.startswith(partitions.NEW):
            raise KeyboardInterrupt("killed")
        return real_rename(src, dst)

    monkeypatch.setattr(partitions.os, "rename", killed_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        partitions.swap_in(final)
    monkeypatch.setattr(partitions.os, "rename", real_rename)
    assert not final.exists()
    assert partitions.recover(tmp_path) == [f"finished swapping {final}"]
    assert [(p.name, p.read_bytes()) for p in final.iterdir()] == [("compacted.parquet", b"new")]
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]  # no hidden folder left


def test_a_swap_puts_the_new_days_files_on_the_disk_before_the_old_day_goes(tmp_path, monkeypatch):
    """After a power cut the day must be the old one or the new one whole: every new file and the new folder
    are synced before the first rename, and the table's folder (the renames) after the last."""
    final = partitions.day_dir(tmp_path, "gpu_daily", date(2026, 11, 20))
    final.mkdir(parents=True)
    (final / "rollup.parquet").write_bytes(b"old")
    new = partitions.staging_dir(final)
    for name in ("a.parquet", "b.parquet"):
        (new / name).write_bytes(b"new")
    events = []
    real_rename = os.rename
    monkeypatch.setattr(partitions, "fsync_path", lambda p: events.append(("sync", Path(p).name)))
    monkeypatch.setattr(partitions.os, "rename",
                        lambda src, dst: events.append(("rename", Path(src).name)) or real_rename(src, dst))
    partitions.swap_in(final)
    first_rename = events.index(("rename", final.name))
    assert {("sync", "a.parquet"), ("sync", "b.parquet"), ("sync", new.name)} <= set(events[:first_rename])
    assert events[-1] == ("sync", final.parent.name)
    assert (final / "a.parquet").read_bytes() == b"new" and not (final / "rollup.parquet").exists()


def test_the_extra_raw_days_marker_stays_while_its_raw_samples_do(warehouse, settings):
    """Day 2 (11-21) is past the raw window but kept as the oldest day's day before: its .rolled marker must
    stay as long as its raw samples do. Without it the next rollup, with nothing new, takes the day's samples
    for late ones and warns of late samples on every run until retention takes the day."""
    now = datetime(2026, 12, 22, 1)  # raw window from 11-22
    rollup(warehouse, settings, now=now)
    assert sorted(partitions.day_dirs(warehouse, "host_samples")) == [date(2026, 11, 21)]
    assert [p.name for p in (warehouse / ROLLED_DIR).iterdir()] == ["2026-11-21"]
    report = rollup(warehouse, settings, now=now + timedelta(hours=1))
    assert (report.days_rolled, report.late, report.warnings()) == ([], [], [])


def test_a_sample_after_more_than_24_hours_without_one_stands_for_nothing_whichever_days_the_gap_spans(
        tmp_path, settings):
    """Differential review: the first sample after a long gap stood for 0 s when its predecessor was two days
    back (out of the day before, all a day's rollup reads) and for max_interval_s when it was one day back,
    30 h earlier; and the report's raw counts (idle-held, bookings) gave it max_interval_s either way. Now
    more than 24 h without a sample means 0 s everywhere."""
    from reports.sql import prepared

    data = tmp_path / "data"
    held = [f.gpu_process(100, "alice", gpu_mem_bytes=3 * GIB)]
    times = [DAY1 + timedelta(minutes=10), DAY1 + timedelta(minutes=20),  # day 1
             DAY1 + timedelta(hours=30, minutes=20), DAY1 + timedelta(hours=30, minutes=30)]  # day 2, 30 h on
    def doc(t, after_gap):  # rebooted during the gap: counters restarted, energy too
        d = f.document("gpu01", t, gpus=[f.gpu(0, util=0, mem_used_bytes=3 * GIB, processes=held,
                                               energy_mj=(t - times[1]).seconds * 100_000 if after_gap else
                                               10**9 + (t - DAY1).seconds * 100_000)])
        if after_gap:
            boot = times[1] + timedelta(hours=29)
            d["host"]["boot_time"] = f.iso_z(boot)
            d["cpu"]["jiffies"] = {k: v * (t - boot).total_seconds() // (t - f.BOOT).total_seconds()
                                   for k, v in f.jiffies(t, 16, 0.25).items()}
        return d

    store(data, ((t, doc(t, i >= 2)) for i, t in enumerate(times)))
    rollup(data, settings, now=DAY1 + timedelta(days=2, hours=1))
    # day 1: the first sample stands for nothing, the second for 600 s; day 2: the one after the gap for
    # nothing (it was 600 s), the next for 600 s
    assert q(data, "SELECT ts::DATE, samples, seconds, idle_held_s FROM gpu_daily ORDER BY 1") == [
        (date(2026, 11, 20), 2, 600, 600), (date(2026, 11, 21), 2, 600, 600)]
    assert q(data, "SELECT ts::DATE, samples, seconds FROM host_daily ORDER BY 1") == [
        (date(2026, 11, 20), 2, 600), (date(2026, 11, 21), 2, 600)]
    # no predecessor, so no reset either, though the counters went down across the gap; day 2's CPU is its
    # one interval's, 600 s of 16 CPUs
    assert q(data, "SELECT ts::DATE, counter_resets, cpu_total_jiffies FROM host_daily ORDER BY 1") == [
        (date(2026, 11, 20), 0, 16 * 100 * 600), (date(2026, 11, 21), 0, 16 * 100 * 600)]
    assert q(data, "SELECT sum(energy_resets) FROM gpu_daily") == [(0,)]
    con = connect(data)
    try:
        with prepared(con):
            (idle,) = fetch(con, "problems_idle_held", {
                "since": DAY1, "busy_pct": 5.0, "held_bytes": 1024**3, "hosts": ["gpu01"], "min_held_s": 0.0,
                "max_interval_s": 600.0})
    finally:
        con.close()
    assert idle["held_s"] == 1200  # as the rollups count the same samples (it was 1800)


@pytest.mark.parametrize("back", ["busy", "idle"])
def test_a_busy_count_that_goes_back_is_a_counter_reset_like_a_total_that_does(tmp_path, settings, back):
    """Differential review: where the busy jiffies fell while the total grew, the interval's CPU was left out
    (rightly) but not counted in counter_resets, so nothing said why the hour's CPU was short. Where the idle
    count (with iowait) went back, the interval's busy CPU exceeded its total (over 100 %)."""
    data = tmp_path / "data"
    docs = []
    for k in range(3):
        t = DAY1 + timedelta(minutes=10 * (k + 1))
        doc = f.document("gpu01", t, cpu_busy=0.5)
        if k == 2:
            j = doc["cpu"]["jiffies"]
            if back == "busy":  # user jiffies fall by more than the 10 minutes added, idle takes them: busy went
                j["user"], j["idle"] = j["user"] - 600_000, j["idle"] + 700_000  # back, the total did not
            else:  # iowait went back by more than the interval's idle: busy grew more than the total
                j["user"], j["idle"] = j["user"] + 700_000, j["idle"] - 600_000
        docs.append((t, doc))
    store(data, docs)
    rollup(data, settings, now=DAY1 + timedelta(days=1, hours=1))
    ((samples, seconds, resets, busy, total),) = q(
        data, "SELECT samples, seconds, counter_resets, cpu_busy_jiffies, cpu_total_jiffies FROM host_hourly")
    assert (samples, seconds, resets) == (3, 1200, 1)
    assert busy == pytest.approx(0.5 * 16 * 100 * 600, rel=1e-6)  # the one good interval only
    assert total == pytest.approx(16 * 100 * 600, rel=1e-6)


def admin_record(data, host, when):
    from fleetscope.admin import AdminResult, record

    record(data, AdminResult(host, "kill", "pid 1", "ok", True, "terminated", False), {"action": "kill", "pid": 1},
           now=when)


def test_an_admin_record_written_while_a_rollup_compacts_its_day_is_kept(tmp_path, settings, monkeypatch):
    """`fleetscope admin` records without the data lock (a collect may hold it for minutes). A record of
    23:59:59 written just after midnight, as that night's rollup compacted the day, landed in the day's folder
    between the compaction's read and its swap, and went with the old folder."""
    import threading

    data = tmp_path / "data"
    day = DAY1.date()
    for k, host in enumerate(("node1", "node2")):
        admin_record(data, host, DAY1 + timedelta(hours=k + 1))
    real_swap, writers = partitions.swap_in, []

    def swap_with_a_record_arriving(final):
        if final.parent.name == "admin_actions" and not writers:
            writers.append(threading.Thread(target=admin_record, args=(data, "late", DAY1 + timedelta(
                hours=23, minutes=59, seconds=59))))
            writers[0].start()
            writers[0].join(timeout=1.5)  # without the lock it writes now, into the folder about to be swapped
        real_swap(final)

    monkeypatch.setattr(partitions, "swap_in", swap_with_a_record_arriving)
    report = rollup(data, settings, now=DAY1 + timedelta(days=1, minutes=1))
    writers[0].join(timeout=60)
    assert not writers[0].is_alive()
    assert report.compacted["admin_actions"] == 1
    assert sorted(r[0] for r in q(data, "SELECT host FROM admin_actions")) == ["late", "node1", "node2"]
    assert len(partitions.parquet_files(partitions.day_dir(data, "admin_actions", day))) == 2


def test_a_swap_cut_between_its_renames_then_an_admin_record_keeps_both(tmp_path):
    """A rollup killed between a swap's two renames leaves no date=D; `fleetscope admin` (without the data
    lock) may then make the day again for its record before the next run recovers: the recovery took the
    new folder for the finished swap and dropped the compacted day."""
    final = partitions.day_dir(tmp_path, "admin_actions", date(2026, 11, 20))
    final.parent.mkdir(parents=True)
    (partitions.staging_dir(final) / "compacted.parquet").write_bytes(b"compacted")
    final.with_name(partitions.OLD + final.name).mkdir()
    (final.with_name(partitions.OLD + final.name) / "admin-1.parquet").write_bytes(b"one")
    final.mkdir()
    (final / "admin-2.parquet").write_bytes(b"recorded since")
    assert partitions.recover(tmp_path) == [f"finished swapping {final}, with the files written since"]
    assert sorted((p.name, p.read_bytes()) for p in final.iterdir()) == [
        ("admin-2.parquet", b"recorded since"), ("compacted.parquet", b"compacted")]
    assert sorted(p.name for p in final.parent.iterdir() if p.name != ".lock") == [final.name]


def test_a_finished_swaps_old_folder_and_a_later_cut_staging_are_dropped_not_merged(tmp_path):
    """The other way to have the old, the new and the day's folder at once: a swap that finished but was cut
    before it removed the old folder, then a later compaction cut while it staged. The day (with the compacted
    file) is whole and stays as it is: its own files replace the half-written staging's."""
    final = partitions.day_dir(tmp_path, "admin_actions", date(2026, 11, 20))
    final.mkdir(parents=True)
    (final / "compacted.parquet").write_bytes(b"whole")
    (final / "admin-3.parquet").write_bytes(b"since")
    (partitions.staging_dir(final) / "compacted.parquet").write_bytes(b"half")
    final.with_name(partitions.OLD + final.name).mkdir()
    (final.with_name(partitions.OLD + final.name) / "admin-1.parquet").write_bytes(b"one")
    partitions.recover(tmp_path)
    assert sorted((p.name, p.read_bytes()) for p in final.iterdir()) == [
        ("admin-3.parquet", b"since"), ("compacted.parquet", b"whole")]
    assert sorted(p.name for p in final.parent.iterdir() if p.name != ".lock") == [final.name]


def test_the_admin_actions_lock_is_waited_for_then_taken_and_busy_after_the_wait(tmp_path):
    import threading

    from fleetscope.lock import Busy, admin_actions_lock

    holder = admin_actions_lock(tmp_path)
    holder.__enter__()
    threading.Timer(0.3, holder.__exit__, args=(None, None, None)).start()
    with admin_actions_lock(tmp_path, wait_s=30):
        with pytest.raises(Busy, match="writing .*admin_actions"), admin_actions_lock(tmp_path, wait_s=0.2):
            pass
    with admin_actions_lock(tmp_path, wait_s=0):  # let go at the end
        pass
    assert (tmp_path / "admin_actions" / ".lock").stat().st_mode & 0o777 == 0o664  # the group may write it


def test_ctrl_c_while_a_record_waits_for_the_lock_says_it_is_not_on_record(tmp_path, monkeypatch):
    """The action ran on the host; Ctrl-C as its record waited for a compaction must still say what it did and
    that it is not on record (it ended as a bare "interrupted", exit 130)."""
    from fleetscope import admin, lock
    from fleetscope.lock import admin_actions_lock

    def ctrl_c(seconds):
        raise KeyboardInterrupt

    result = admin.AdminResult("node1", "kill", "pid 1", "ok", True, "terminated", False)
    with admin_actions_lock(tmp_path):  # a rollup compacting the table
        monkeypatch.setattr(lock.time, "sleep", ctrl_c)
        got = admin._on_record(tmp_path, result, {"action": "kill", "pid": 1})
    assert (got.status, got.unrecorded) == ("ok", "interrupted while it waited for admin_actions' lock (a rollup "
                                                   "compacting the table)")
    assert not partitions.day_dirs(tmp_path, "admin_actions")


def test_ctrl_c_while_a_record_is_written_says_what_is_known(tmp_path, monkeypatch):
    """Review: Ctrl-C in the write's own Python (its fsync) escaped as a bare "interrupted": the action's result
    went unsaid, though it ran; and the lock is let go."""
    from fleetscope import admin
    from fleetscope.lock import admin_actions_lock
    from fleetscope.warehouse import ingest

    def ctrl_c(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest, "fsync_path", ctrl_c)
    result = admin.AdminResult("node1", "kill", "pid 1", "ok", True, "terminated", False)
    got = admin._on_record(tmp_path, result, {"action": "kill", "pid": 1})
    assert (got.status, got.unrecorded) == ("ok", "interrupted while it was written: whether it is on record is "
                                                   "not known")
    with admin_actions_lock(tmp_path, wait_s=0):
        pass


def test_a_file_system_that_cannot_lock_goes_on_without_the_lock(tmp_path):
    """flock on NFS needs a file open for writing (EBADF otherwise), as on an O_PATH descriptor here: the table is
    then written as it was before it had a lock, not refused."""
    from fleetscope.lock import _take

    (tmp_path / "f").write_text("")
    fd = os.open(tmp_path / "f", os.O_PATH)
    try:
        assert _take(fd) is None
    finally:
        os.close(fd)


def test_the_lock_made_by_one_account_is_taken_by_another(tmp_path):
    """An operator's `fleetscope admin` and the cron user's rollup are two accounts: the lock file one of them made
    must not keep the other out (read-only, the flock still excludes on a local file system). lock.py run as
    nobody, from a copy it may read, by the system's python3."""
    import subprocess
    import tempfile

    import fleetscope.lock
    from fleetscope.lock import Busy, admin_actions_lock

    python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or python is None:
        pytest.skip("acts as nobody: needs root and /usr/bin/python3 (CI runs as root)")
    shared = Path(tempfile.mkdtemp(prefix="fleetscope-lock-", dir="/tmp"))  # pytest's tmp_path: root's only
    try:
        shutil.copy(fleetscope.lock.__file__, shared / "lock.py")
        (shared / "data" / "admin_actions").mkdir(parents=True)
        for path in (shared, *shared.rglob("*")):
            path.chmod(0o777 if path.is_dir() else 0o644)
        with admin_actions_lock(shared / "data"):
            pass  # root made it: 0664, root's
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from lock import Busy, admin_actions_lock\n"
                "try:\n    with admin_actions_lock(sys.argv[1] + '/data', wait_s=float(sys.argv[2])):\n"
                "        print('taken')\nexcept Busy:\n    print('busy')\n")

        def as_nobody(wait):
            out = subprocess.run([python, "-sE", "-c", code, str(shared), str(wait)], capture_output=True, text=True,
                                 user="nobody", group="nogroup", extra_groups=[], cwd="/", timeout=60)
            return out.stdout.strip() or out.stderr

        assert as_nobody(0) == "taken"
        with admin_actions_lock(shared / "data"):
            assert as_nobody(0.2) == "busy"
        # a folder nobody may only read, with no lock file yet: no lock (nobody writes nothing there either)
        (shared / "data" / "admin_actions" / ".lock").unlink()
        (shared / "data" / "admin_actions").chmod(0o755)
        assert as_nobody(0) == "taken"
    finally:
        shutil.rmtree(shared)
    with pytest.raises(Busy), admin_actions_lock(tmp_path), admin_actions_lock(tmp_path, wait_s=0):
        pass
