"""A document from a real GPU, and the fake NVML checked against it.

tests/collectors/data/h200-busy.json is what `python3 -m collectors` printed on a lent machine with one
NVIDIA H200 (driver 580.159.04, CUDA 13.0, persistence mode on, accounting off), while a PyTorch matrix
product kept it busy (benchmarks/gpu_host.sh, 2026-11-27); only the GPU's serial and UUID are replaced, in
the same formats. The fake (fake_pynvml.py, two H100 SXM, the same Hopper generation and driver branch)
must give the same fields with the same types, nulls where the real GPU has none, and the same forms of
driver, CUDA and NVML versions; the real document must pass the document contract and the warehouse.
"""

import datetime
import json
import re
from pathlib import Path

import collectors
from collectors import gpus

REAL = json.loads((Path(__file__).parent / "data" / "h200-busy.json").read_text())
REAL_GPU = REAL["gpus"]["devices"][0]
# Lists compared by their items' fields, or not at all where the real GPU had none (accounting was off,
# MIG disabled); errors: both empty.
LISTS = ("throttle_reasons", "processes", "accounting", "mig_devices", "errors")


def kind(value):
    """A JSON value's type, with int and float apart (a counter must stay an integer)."""
    return None if value is None else type(value).__name__


def test_the_real_document_is_whole_and_without_errors(check_document):
    # Recorded on 2026-11-27, before the collector said whether /proc hides other users' processes
    # (processes.others_hidden, 2026-11-28): the one field it lacks, as any document of a collector from
    # before; the warehouse stores it as not known (null), as this check takes it.
    # Likewise a GPU process's started_at and memory.oom_kills (2026-11-29): null for them here.
    assert "others_hidden" not in REAL["processes"] and "started_at" not in REAL_GPU["processes"][0]
    assert "oom_kills" not in REAL["memory"]
    check_document({**REAL, "processes": {**REAL["processes"], "others_hidden": None},
                    "memory": {**REAL["memory"], "oom_kills": None},
                    "gpus": {**REAL["gpus"], "devices": [{**REAL_GPU, "processes": [
                        {**p, "started_at": None} for p in REAL_GPU["processes"]]}]}})
    assert REAL["errors"] == [] and REAL["gpus"]["available"] is True
    assert tuple(REAL_GPU) == gpus.DEVICE_FIELDS and REAL_GPU["errors"] == []
    # What this GPU cannot tell is null, quietly: no fan on an SXM board, no page retirement on Hopper
    # (it remaps rows instead).
    assert REAL_GPU["fan_pct"] is None and REAL_GPU["retired_pages"] is None
    assert REAL_GPU["remapped_rows_pending"] is False and REAL_GPU["utilization_samples"] > 0
    busy = REAL["processes"]["top"][0]
    [on_gpu] = REAL_GPU["processes"]
    assert on_gpu["pid"] == busy["pid"] and on_gpu["command"] == busy["command"] and on_gpu["type"] == "compute"


def test_the_fake_gpus_have_the_real_gpus_fields_types_and_nulls(fake_nvml):
    document = collectors.collect()
    fakes = document["gpus"]["devices"]
    assert document["errors"] == [] and fakes
    # A MIG parent reports no utilization (NVML: NotSupported), as the fake's GPU 0 does; the H200 had MIG off.
    mig_nulls = {"utilization_gpu_pct", "utilization_mem_pct", "utilization_gpu_avg_pct", "utilization_samples"}
    assert [fake["mig_mode"] for fake in fakes] == [True, False]
    for fake in fakes:
        assert list(fake) == list(REAL_GPU)
        for field, real in REAL_GPU.items():
            if field in LISTS or (fake["mig_mode"] and field in mig_nulls and fake[field] is None):
                continue
            assert kind(fake[field]) == kind(real), (fake["index"], field, fake[field], real)
        assert fake["errors"] == REAL_GPU["errors"] == []
        assert all(isinstance(reason, str) for reason in fake["throttle_reasons"])
    real_process = REAL_GPU["processes"][0]
    for fake_process in (p for fake in fakes for p in fake["processes"]):
        # started_at is read from /proc, not NVML, and came after the real document (above)
        assert [k for k in fake_process if k != "started_at"] == list(real_process)
        # null where unknown (a pid this machine does not have: user and command); the MIG ids are ints in MIG
        for field, value in fake_process.items():
            assert value is None or field == "started_at" or kind(value) == kind(real_process[field]) or \
                field.startswith("mig_"), field
    assert {kind(p["user"]) for fake in fakes for p in fake["processes"]} == {"str", None}  # both cases seen
    # One number each, formed alike.
    for doc in (REAL, document):
        host = doc["host"]
        assert re.fullmatch(r"\d{3}\.\d+\.\d+", host["nvidia_driver"]), host
        assert re.fullmatch(r"\d+\.\d", host["cuda_version"]), host
        assert host["nvml_version"] == f"{host['cuda_version'].split('.')[0]}.{host['nvidia_driver']}"


def test_the_real_document_goes_through_the_warehouse_and_the_report(tmp_path, as_result):
    import reports
    from fleetscope.spool import Spool
    from fleetscope.warehouse import connect, ingest_pending

    result = as_result(REAL, host="h200")
    result["ts"] = REAL["time"]["collected_at"][:19] + "Z"
    collected = datetime.datetime.fromisoformat(result["ts"][:19])
    run_id = collected.strftime("%Y%m%dT%H%M%S000000Z-0001")
    spool = Spool(tmp_path / "data")
    meta = {"run_id": run_id, "started_at": result["ts"], "finished_at": result["ts"]}
    spool.start_run(run_id, meta)
    spool.put(run_id, result)
    spool.finish_run(run_id, meta)
    assert not ingest_pending(tmp_path / "data").rejected
    con = connect(tmp_path / "data")
    try:
        sample = con.execute("SELECT name, utilization_gpu_pct, utilization_gpu_avg_pct, power_w, energy_mj, "
                             "remapped_rows_pending, process_count FROM gpu_samples").fetchall()
        process = con.execute("SELECT user, type, source, gpu_mem_bytes FROM gpu_processes").fetchall()
        index = reports.build_site(con, tmp_path / "site")
    finally:
        con.close()
    assert sample == [("NVIDIA H200", 99, 43.79, 697.167, 18360222, False, 1)]
    assert process == [("root", "compute", "running", REAL_GPU["processes"][0]["gpu_mem_bytes"])]
    page = (tmp_path / "site" / "hosts" / "h200.html").read_text()
    assert "NVIDIA H200" in page and "h200" in index.read_text()
