"""A small real warehouse for the report tests: synthetic documents spooled and ingested for real."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import pytest

from fleetscope.settings import Settings
from fleetscope.warehouse import connect, ingest_pending
from fleetscope.warehouse.rollup import rollup
from tests.docfactory import GIB, admin_action, document, gpu, gpu_process, ok, spool_run, top_process, unreachable

T0 = datetime(2026, 11, 23, 9, 0)
RUNS = [T0 + timedelta(minutes=5 * i) for i in range(3)]
NOW = RUNS[-1] + timedelta(minutes=2)
MAINTENANCE_AT = RUNS[0] + timedelta(minutes=1)
LOST_MESSAGE = "Failed to connect to the host via ssh: connect to host 10.0.0.9 port 22: No route to host"


def build_fleet(data_dir) -> None:
    """Three runs five minutes apart over three hosts:
    gpu01: 2 GPUs, CPU 50 %; GPU 0 busy (alice) reading 380 W while its energy counter says 400 W;
           GPU 1 idle but holding memory (bob) at the last run;
    cpu01: no GPUs, CPU 25 %, timed out at the middle run;
    lost01: unreachable every time (host_status rows only).
    Top processes (host_processes) of gpu01: alice's trainer (pid 4242, on GPU 0) and loader (4243, no GPU),
    root's init (1), and bob's kernel (777, on GPU 1) at the last run; of cpu01: carol's make (9001).
    Admin actions: GPU 1 of gpu01 put in maintenance by "ops" after the first run (ok); then a check-mode
    "off" for it and a failed "on" for GPU 0, which change nothing. GPU 1 stays in maintenance.
    Then the rollups (hourly, daily, per user), as `fleetscope collect` writes them."""
    for i, at in enumerate(RUNS):
        gpus = [
            gpu(0, util=90 + i, mem_used_bytes=(40 + i) * GIB, temperature_c=60 + i, power_w=380.0,
                energy_mj=10**9 + i * 300 * 400_000,
                processes=[gpu_process(4242, "alice", "python train.py --epochs 10", 38 * GIB,
                                       started_at="2026-11-23T08:00:00Z")]),
            gpu(1, util=0, mem_used_bytes=2 * GIB, temperature_c=35, power_w=70.0,
                energy_mj=10**9 + i * 300 * 70_000,
                processes=[gpu_process(777, "bob", "jupyter-kernel", GIB)] if i == len(RUNS) - 1 else []),
        ]
        top = [
            top_process(4242, "alice", "python train.py --epochs 10", cpu_time_s=3600 + 300 * i, cpu_percent=98.0,
                        rss_bytes=20 * GIB),
            top_process(4243, "alice", "python loader.py", cpu_time_s=600 + 60 * i, cpu_percent=20.0,
                        rss_bytes=4 * GIB),
            top_process(1, "root", "/sbin/init", cpu_time_s=12, cpu_percent=0.0, rss_bytes=16 * 1024**2,
                        started_at=datetime(2026, 11, 1, 8, 0)),
        ]
        if i == len(RUNS) - 1:
            top.append(top_process(777, "bob", "jupyter-kernel", cpu_time_s=30, cpu_percent=1.5, rss_bytes=GIB))
        results = [
            ok("gpu01", at, document("gpu01", at, cores=64, cpu_busy=0.5, gpus=gpus, top=top,
                                     mem_total_bytes=512 * GIB, mem_used_bytes=(100 + 10 * i) * GIB)),
            unreachable("lost01", at, LOST_MESSAGE),
        ]
        if i == 1:
            results.append({"host": "cpu01", "status": "timeout", "message": "no result in time",
                            "ts": str(at), "document": None})
        else:
            results.append(ok("cpu01", at, document("cpu01", at, cores=8, cpu_busy=0.25, top=[
                top_process(9001, "carol", "make -j8", cpu_time_s=1200, cpu_percent=75.0, rss_bytes=2 * GIB)])))
        spool_run(data_dir, at, results)
    maintenance = {"action": "maintenance", "state": "on", "gpu": 1}
    admin_action(data_dir, MAINTENANCE_AT, "gpu01", maintenance, operator="ops")
    admin_action(data_dir, MAINTENANCE_AT + timedelta(minutes=1), "gpu01", {**maintenance, "state": "off"},
                 check_mode=True, operator="ops")
    admin_action(data_dir, MAINTENANCE_AT + timedelta(minutes=2), "gpu01", {**maintenance, "gpu": 0},
                 status="failed", changed=False, operator="ops")
    report = ingest_pending(data_dir)
    assert not report.rejected, report.rejected
    rollup(data_dir, Settings(), now=NOW)


@pytest.fixture(scope="module")
def fleet_data(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    build_fleet(data_dir)
    return data_dir


@pytest.fixture(scope="module")
def fleet_site(fleet_data, tmp_path_factory):
    """The site built once from the fleet warehouse (tests only read it)."""
    from reports import build_site

    with contextlib.closing(connect(fleet_data)) as con:
        return build_site(con, tmp_path_factory.mktemp("out") / "site", now=NOW).parent
