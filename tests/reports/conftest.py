"""A small real warehouse for the report tests: synthetic documents spooled and ingested for real."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import pytest

from fleetscope.settings import Settings
from fleetscope.warehouse import connect, ingest_pending
from fleetscope.warehouse.rollup import rollup
from tests.docfactory import GIB, document, gpu, gpu_process, ok, spool_run, unreachable

T0 = datetime(2026, 11, 23, 9, 0)
RUNS = [T0 + timedelta(minutes=5 * i) for i in range(3)]
NOW = RUNS[-1] + timedelta(minutes=2)
LOST_MESSAGE = "Failed to connect to the host via ssh: connect to host 10.0.0.9 port 22: No route to host"


def build_fleet(data_dir) -> None:
    """Three runs five minutes apart over three hosts:
    gpu01: 2 GPUs, CPU 50 %; GPU 0 busy (alice) reading 380 W while its energy counter says 400 W;
           GPU 1 idle but holding memory (bob) at the last run;
    cpu01: no GPUs, CPU 25 %, timed out at the middle run;
    lost01: unreachable every time (host_status rows only).
    Then the rollups (hourly, daily, per user), as `fleetscope collect` writes them."""
    for i, at in enumerate(RUNS):
        gpus = [
            gpu(0, util=90 + i, mem_used_bytes=(40 + i) * GIB, temperature_c=60 + i, power_w=380.0,
                energy_mj=10**9 + i * 300 * 400_000,
                processes=[gpu_process(4242, "alice", "python train.py --epochs 10", 38 * GIB)]),
            gpu(1, util=0, mem_used_bytes=2 * GIB, temperature_c=35, power_w=70.0,
                energy_mj=10**9 + i * 300 * 70_000,
                processes=[gpu_process(777, "bob", "jupyter-kernel", GIB)] if i == len(RUNS) - 1 else []),
        ]
        results = [
            ok("gpu01", at, document("gpu01", at, cores=64, cpu_busy=0.5, gpus=gpus,
                                     mem_total_bytes=512 * GIB, mem_used_bytes=(100 + 10 * i) * GIB)),
            unreachable("lost01", at, LOST_MESSAGE),
        ]
        if i == 1:
            results.append({"host": "cpu01", "status": "timeout", "message": "no result in time",
                            "ts": str(at), "document": None})
        else:
            results.append(ok("cpu01", at, document("cpu01", at, cores=8, cpu_busy=0.25)))
        spool_run(data_dir, at, results)
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
