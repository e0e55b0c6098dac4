"""The synthetic fleet (benchmarks/fleetgen.py): deterministic, valid documents, sane counters, queryable."""

from __future__ import annotations

from datetime import datetime

import pytest

from benchmarks.fleetgen import Fleet, generate, spool_runs
from fleetscope.warehouse import connect, host_rows, ingest_pending

START = datetime(2026, 3, 2)


def runs(fleet: Fleet, n: int):
    return [fleet.run(k) for k in range(n)]


def test_same_seed_same_fleet_other_seed_another():
    a = runs(Fleet(hosts=3, gpus=2, seed=7, start=START), 40)
    b = runs(Fleet(hosts=3, gpus=2, seed=7, start=START), 40)
    c = runs(Fleet(hosts=3, gpus=2, seed=8, start=START), 40)
    assert a == b
    assert a != c


def test_a_host_behaves_the_same_whatever_hosts_are_simulated_beside_it():
    whole = Fleet(hosts=4, gpus=2, seed=3, start=START)
    part = Fleet(hosts=4, gpus=2, seed=3, start=START, host_indices=[2])
    for k in range(60):
        assert whole.run(k)[2][2] == part.run(k)[2][0]


def test_documents_pass_host_rows_and_look_like_a_busy_gpu_fleet():
    fleet = Fleet(hosts=4, gpus=4, seed=1, start=START, chaos=5)
    statuses, busy, free_mem, idle_held = {}, [], [], 0
    for run_id, _, results in runs(fleet, 288):
        for result in results:
            rows = host_rows(result, run_id)  # raises DocumentError on anything off the schema
            statuses[result["status"]] = statuses.get(result["status"], 0) + 1
            if result["status"] != "ok":
                assert result["document"] is None and result["message"]
                assert rows.keys() == {"host_status"}
                continue
            assert len(rows["gpu_samples"]) == 4 and len(rows["host_samples"]) == 1
            for g in result["document"]["gpus"]["devices"]:
                if g["processes"]:
                    busy.append(g["utilization_gpu_pct"])
                    idle_held += g["utilization_gpu_pct"] == 0
                    assert all(p["user"] and p["pid"] and p["command"] for p in g["processes"])
                    assert g["mem_used_bytes"] > 1024**3
                else:
                    free_mem.append(g["mem_used_bytes"])
                    assert g["throttle_reasons"] == ["gpu_idle"]
    assert statuses["ok"] > 0.9 * sum(statuses.values())
    assert busy and free_mem and idle_held  # busy GPUs, free GPUs and jobs holding memory at 0 %
    assert max(busy) >= 90 and sorted(busy)[len(busy) // 2] > 0  # training near 100 %, most jobs working
    assert max(free_mem) <= 8 * 1024**2  # a free GPU holds ~0 memory


def test_counters_only_go_down_at_a_reboot_or_driver_reload_and_energy_follows_power():
    fleet = Fleet(hosts=3, gpus=2, seed=2, start=START, chaos=20)
    last: dict[str, dict] = {}
    reboots = energy_restarts = unreachable = 0
    for _, _, results in runs(fleet, 576):
        for result in results:
            if result["status"] == "unreachable":
                unreachable += 1
            doc = result["document"]
            if doc is None:
                continue
            t = datetime.fromisoformat(doc["time"]["collected_at"].replace("Z", "")).timestamp()
            cur = {
                "t": t, "boot": doc["host"]["boot_time"],
                "jiffies": sum(doc["cpu"]["jiffies"].values()),
                "net": sum(i["rx_bytes"] + i["tx_bytes"] for i in doc["network"]["interfaces"]),
                "disk": sum(d["read_bytes"] + d["write_bytes"] for d in doc["disks"]["io"]),
                "gpus": [(g["energy_mj"], g["power_w"], g["power_limit_w"]) for g in doc["gpus"]["devices"]],
            }
            prev = last.get(result["host"])
            last[result["host"]] = cur
            if prev is None:
                continue
            dt = cur["t"] - prev["t"]
            if cur["boot"] != prev["boot"]:
                reboots += 1
                boot = datetime.fromisoformat(cur["boot"].replace("Z", "")).timestamp()
                assert boot <= cur["t"]
                # restarted from ~0: no more than the whole machine busy since boot
                assert cur["jiffies"] <= 2 * 100 * doc["cpu"]["logical"] * (cur["t"] - boot) + 1000
                continue
            for key in ("jiffies", "net", "disk"):
                assert cur[key] >= prev[key], key
            for (e0, p0, _), (e1, p1, limit) in zip(prev["gpus"], cur["gpus"]):
                if e1 < e0:  # driver reload: restarts from ~0
                    energy_restarts += 1
                    assert e1 <= limit * dt * 1000
                elif dt < 400:  # consecutive samples: energy = mean power x time
                    assert (e1 - e0) / 1000 == pytest.approx((p0 + p1) / 2 * dt, rel=0.01, abs=5)
    assert reboots and energy_restarts and unreachable


def test_a_tiny_warehouse_is_queryable_and_its_spooled_runs_ingest(tmp_path):
    report = generate(tmp_path, hosts=3, gpus=2, days=1, seed=5, start=START, workers=1, spool_after=2, chaos=10)
    assert report.runs == 288 and report.results == 288 * 3
    con = connect(tmp_path)
    try:
        assert con.execute("SELECT count(*), sum(hosts_total) FROM runs").fetchone() == (288, 288 * 3)
        statuses = dict(con.execute("SELECT status, count(*) FROM host_status GROUP BY 1").fetchall())
        assert statuses == {k: v for k, v in report.statuses.items() if v}
        assert statuses.get("unreachable")  # chaos 10: some host was down or cut off
        assert con.execute("SELECT count(*) FROM gpu_samples").fetchone()[0] == 2 * statuses["ok"]
        assert con.execute("SELECT count(DISTINCT host) FROM hosts").fetchone()[0] == 3
        users = con.execute("SELECT count(DISTINCT \"user\") FROM gpu_processes").fetchone()[0]
        assert users >= 2
    finally:
        con.close()
    files = sorted(p.name for p in (tmp_path / "gpu_samples").glob("date=*/*.parquet"))
    assert files == ["gen-2026-03-02.parquet"]  # one file per table and day
    ingested = ingest_pending(tmp_path)
    assert len(ingested.runs) == 2 and not ingested.rejected
    assert ingested.rows["host_status"] == 6


def test_spool_runs_writes_real_runs(tmp_path):
    ids = spool_runs(tmp_path, runs=3, hosts=2, gpus=1, start=START)
    assert len(ids) == 3 and ids == sorted(ids)
    report = ingest_pending(tmp_path)
    assert report.runs == ids and not report.rejected


@pytest.mark.slow
def test_worker_processes_write_the_same_warehouse(tmp_path):
    tables = ("runs", "host_status", "host_samples", "gpu_samples", "gpu_processes", "host_processes", "hosts")
    out = []
    for workers in (1, 2):
        generate(tmp_path / str(workers), hosts=3, gpus=2, days=0.25, seed=4, start=START, workers=workers)
        con = connect(tmp_path / str(workers))
        out.append({t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables})
        con.close()
    assert out[0] == out[1]
