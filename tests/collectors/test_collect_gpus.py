"""GPUs through a fake NVML shaped like a real two-H100 host (fake_pynvml.py), and through the real
pynvml on this machine (no driver here: not an error)."""

import ctypes
import datetime
import os
import pwd
import sys

import psutil
import pynvml as real
import pytest

import collectors
from collectors import gpus
from fleetscope.warehouse.rows import host_rows

GIB = 1024**3


def _has_driver():
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_fake_is_built_on_the_real_pynvml(fake_nvml):
    assert fake_nvml.NVMLError_NotSupported is real.NVMLError_NotSupported
    with pytest.raises(real.NVMLError_NotSupported):
        fake_nvml.nvmlDeviceGetFanSpeed(fake_nvml.nvmlDeviceGetHandleByIndex(1))


def test_two_h100s_are_reported_with_every_documented_field(fake_nvml, check_document):
    document = check_document(collectors.collect())
    g = document["gpus"]
    assert g["available"] is True and g["reason"] is None and document["errors"] == []
    assert [d["index"] for d in g["devices"]] == [0, 1]
    for device in g["devices"]:
        assert tuple(device) == gpus.DEVICE_FIELDS
        assert device["errors"] == []  # NotSupported fields are null, not errors
        assert device["fan_pct"] is None and device["retired_pages"] is None
        assert device["name"] == "NVIDIA H100 80GB HBM3" and device["uuid"].startswith("GPU-")
    busy = g["devices"][1]
    assert busy["bus_id"] == "00000000:34:00.0"  # bytes from the ctypes struct, decoded
    assert (busy["utilization_gpu_pct"], busy["utilization_mem_pct"]) == (97, 41)
    assert busy["utilization_samples"] == 70
    assert busy["utilization_gpu_avg_pct"] == round(sum(90 + i % 11 for i in range(70)) / 70, 2)
    assert (busy["mem_total_bytes"], busy["mem_used_bytes"], busy["mem_reserved_bytes"]) == (
        85_520_809_984, 26 * GIB, 540 * 1024**2)
    assert (busy["temperature_c"], busy["temperature_mem_c"]) == (61, 70)
    assert (busy["power_w"], busy["power_limit_w"], busy["energy_mj"]) == (412.345, 700.0, 123_456_789_012)
    assert (busy["clock_sm_mhz"], busy["clock_mem_mhz"], busy["clock_sm_max_mhz"], busy["pstate"]) == (
        1980, 2619, 1980, 0)
    assert (busy["throttle_reasons"], busy["throttle_mask"]) == (["sw_power_cap"], 4)
    assert busy["ecc_mode"] is True and busy["ecc_aggregate_corrected"] == 3 and busy["ecc_volatile_uncorrected"] == 0
    assert (busy["remapped_rows_pending"], busy["remapped_rows_failure"]) == (False, False)
    assert (busy["persistence_mode"], busy["compute_mode"], busy["mig_mode"], busy["accounting_mode"]) == (
        True, "default", False, True)
    assert (busy["pcie_gen"], busy["pcie_width"], busy["mig_devices"]) == (5, 16, [])


@pytest.mark.parametrize("exiting", [False, True])
def test_nvml_starts_once_and_is_shut_down_unless_the_process_is_ending(fake_nvml, exiting):
    document = collectors.collect(exiting=exiting)
    host = document["host"]
    assert (host["nvidia_driver"], host["cuda_version"], host["nvml_version"]) == ("580.65.06", "13.0", "13.580.65.06")
    assert host["gpu_models"] == ["NVIDIA H100 80GB HBM3"]
    assert (fake_nvml.host.inits, fake_nvml.host.shutdowns) == (1, 0 if exiting else 1)
    assert document["gpus"]["available"] is True and document["errors"] == []


@pytest.mark.parametrize("exiting", [False, True])
def test_host_alone_reads_the_nvidia_facts_itself(fake_nvml, exiting):
    document = collectors.collect(only=["host"], exiting=exiting)
    host = document["host"]
    assert host["nvidia_driver"] == "580.65.06" and host["gpu_models"] == ["NVIDIA H100 80GB HBM3"]
    assert (fake_nvml.host.inits, fake_nvml.host.shutdowns) == (1, 0 if exiting else 1)


def test_mig_parent_lists_its_instances_and_reports_no_utilization(fake_nvml, fake_module):
    mig = collectors.collect(only="gpus")["gpus"]["devices"][0]
    assert mig["mig_mode"] is True
    assert (mig["utilization_gpu_pct"], mig["utilization_gpu_avg_pct"], mig["utilization_samples"]) == (None, None, 0)
    instances = [(m["index"], m["gi_id"], m["ci_id"], m["slices"]) for m in mig["mig_devices"]]
    assert instances == [(0, 1, 0, 3), (1, 2, 0, 3)]
    assert all(m["uuid"].startswith("MIG-") and m["mem_total_bytes"] == 40_448 * 1024**2 for m in mig["mig_devices"])
    assert mig["processes"] == [{"pid": fake_module.MISSING_PID, "type": "compute", "gpu_mem_bytes": 5_000 * 1024**2,
                                 "user": None, "command": None, "started_at": None, "mig_gi": 1,
                                 "mig_ci": 0}]
    assert mig["accounting"] == [] and mig["throttle_reasons"] == ["gpu_idle"]


def test_gpu_processes_carry_owner_and_redacted_command(fake_nvml, gpu_worker):
    processes = collectors.collect(only="gpus")["gpus"]["devices"][1]["processes"]
    mine, gone = processes
    assert (mine["pid"], mine["type"], mine["gpu_mem_bytes"]) == (gpu_worker.pid, "compute", 24 * GIB)
    assert mine["user"] == pwd.getpwuid(os.getuid()).pw_name and (mine["mig_gi"], mine["mig_ci"]) == (None, None)
    assert gpu_worker.secret not in mine["command"]
    assert "--password=<redacted>" in mine["command"] and "--token <redacted>" in mine["command"]
    assert gone["gpu_mem_bytes"] is None  # NVML_VALUE_NOT_AVAILABLE
    assert (gone["user"], gone["command"], gone["started_at"]) == (None, None, None)  # exited before we looked
    # when it started, to the second: psutil's own reading of the kernel's start time agrees
    started = datetime.datetime.fromisoformat(mine["started_at"][:-1]).replace(tzinfo=datetime.timezone.utc)
    assert abs(started.timestamp() - psutil.Process(gpu_worker.pid).create_time()) <= 1.5


def test_accounting_records_and_the_since_filter(fake_nvml, gpu_worker):
    now = fake_nvml.host.now
    records = collectors.collect(only="gpus")["gpus"]["devices"][1]["accounting"]
    assert [r["pid"] for r in records] == [31001, 31002, gpu_worker.pid]
    old, ended, running = records
    assert old["max_mem_bytes"] is None and old["duration_s"] == 600.0 and old["running"] is False
    assert ended == {"pid": 31002, "user": None, "gpu_util_pct": 95, "mem_util_pct": 40, "max_mem_bytes": 30 * GIB,
                     "started_at": iso(now - 600), "duration_s": 300.0, "running": False}
    assert running["running"] is True and running["user"] == pwd.getpwuid(os.getuid()).pw_name
    assert 119 <= running["duration_s"] < 180  # still running: time so far, not NVML's 0

    since = collectors.collect(only="gpus", accounting_since=iso(now - 3600))
    assert [r["pid"] for r in since["gpus"]["devices"][1]["accounting"]] == [31002, gpu_worker.pid]
    later = collectors.collect(only="gpus", accounting_since=iso(now + 60))
    assert [r["pid"] for r in later["gpus"]["devices"][1]["accounting"]] == [gpu_worker.pid]


def test_an_unexpected_field_error_is_null_and_recorded_on_the_device(fake_nvml):
    fake_nvml.host.fail["nvmlDeviceGetPowerUsage"] = real.NVMLError(real.NVML_ERROR_UNKNOWN)
    fake_nvml.host.fail["nvmlDeviceGetSerial"] = RuntimeError("ctypes went wrong")
    document = collectors.collect(only="gpus")
    assert document["errors"] == []
    for device in document["gpus"]["devices"]:
        assert device["power_w"] is None and device["serial"] is None and device["energy_mj"] is not None
        assert [(e["call"], e["type"]) for e in device["errors"]] == [
            ("nvmlDeviceGetSerial", "RuntimeError"), ("nvmlDeviceGetPowerUsage", "NVMLError_Unknown")]


def test_a_lost_gpu_keeps_its_index_and_says_why(fake_nvml, check_document, as_result):
    fake_nvml.host.fail["nvmlDeviceGetHandleByIndex"] = real.NVMLError(real.NVML_ERROR_GPU_IS_LOST)
    document = check_document(collectors.collect(only=["gpus", "host"]))
    devices = document["gpus"]["devices"]
    assert [d["index"] for d in devices] == [0, 1] and all(d["name"] is None for d in devices)
    assert devices[0]["errors"][0]["type"] == "NVMLError_GpuIsLost"
    assert len(host_rows(as_result(document), "run-1")["gpu_samples"]) == 2


def test_a_gpus_failure_after_init_is_an_error_and_nvml_is_still_shut_down(fake_nvml):
    fake_nvml.host.fail["nvmlDeviceGetCount"] = real.NVMLError(real.NVML_ERROR_UNKNOWN)
    document = collectors.collect()
    assert document["gpus"] is None and document["host"]["nvidia_driver"] == "580.65.06"
    assert [(e["subsystem"], e["type"]) for e in document["errors"]] == [("gpus", "NVMLError_Unknown")]
    assert fake_nvml.host.shutdowns == fake_nvml.host.inits == 1


@pytest.mark.parametrize("code, reason", [
    (real.NVML_ERROR_LIBRARY_NOT_FOUND, "NVML library not found (no NVIDIA driver)"),
    (real.NVML_ERROR_DRIVER_NOT_LOADED, "NVIDIA driver not loaded"),
    (real.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "NVML init failed: NVMLError_LibRmVersionMismatch: "),
])
def test_no_driver_is_not_an_error(make_fake_nvml, check_document, code, reason):
    fake = make_fake_nvml(init_error=code)
    document = check_document(collectors.collect())
    assert document["gpus"]["available"] is False and document["gpus"]["devices"] == []
    assert document["gpus"]["reason"].startswith(reason)
    assert document["errors"] == [] and fake.host.shutdowns == 0
    assert document["host"]["nvidia_driver"] is None and document["host"]["gpu_models"] == []


def test_no_pynvml_at_all_is_not_an_error(monkeypatch):
    monkeypatch.setattr(gpus, "driver_present", lambda: True)  # a driver, but no pynvml anywhere
    monkeypatch.setitem(sys.modules, "collectors.pynvml_shipped", None)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    document = collectors.collect(only="gpus")
    assert document["gpus"]["available"] is False and "pynvml not available" in document["gpus"]["reason"]
    assert document["errors"] == []


def test_the_shipped_pynvml_comes_first_then_the_hosts(monkeypatch, gpu_worker, fake_module):
    shipped = fake_module.make(gpu_worker.pid)
    hosts = fake_module.make(gpu_worker.pid, init_error=real.NVML_ERROR_DRIVER_NOT_LOADED)
    monkeypatch.setitem(sys.modules, "collectors.pynvml_shipped", shipped)
    monkeypatch.setitem(sys.modules, "pynvml", hosts)
    assert gpus.load_pynvml() is shipped
    monkeypatch.setitem(sys.modules, "collectors.pynvml_shipped", None)
    assert gpus.load_pynvml() is hosts


def test_the_fake_gpu_document_passes_the_warehouse(fake_nvml, gpu_worker, as_result, fake_module):
    document = collectors.collect(top_n=3)
    rows = host_rows(as_result(document), "run-1")
    assert [r["gpu_index"] for r in rows["gpu_samples"]] == [0, 1]
    busy = rows["gpu_samples"][1]
    assert (busy["power_w"], busy["energy_mj"], busy["throttle_reasons"], busy["process_count"]) == (
        412.345, 123_456_789_012, "sw_power_cap", 2)
    sources = [(r["gpu_index"], r["source"], r["pid"]) for r in rows["gpu_processes"]]
    assert sources == [(0, "running", fake_module.MISSING_PID), (1, "running", gpu_worker.pid),
                       (1, "running", fake_module.MISSING_PID + 1), (1, "accounting", 31001),
                       (1, "accounting", 31002), (1, "accounting", gpu_worker.pid)]
    assert rows["hosts"][0]["nvidia_driver"] == "580.65.06" and rows["hosts"][0]["gpu_count"] == 2


def test_the_fake_gpu_document_is_stored_and_rendered(fake_nvml, gpu_worker, as_result, tmp_path):
    """Collector -> spool -> Parquet -> report: the GPU, its user and the redacted command reach the page."""
    import reports
    from fleetscope.collect import iso as controller_iso
    from fleetscope.spool import Spool
    from fleetscope.warehouse import connect, ingest_pending

    document = collectors.collect(top_n=3)
    result = as_result(document)
    result["ts"] = controller_iso(datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None))
    spool = Spool(tmp_path / "data")
    meta = {"run_id": "20261123T090000000000Z-0001", "started_at": result["ts"], "finished_at": result["ts"]}
    spool.start_run(meta["run_id"], meta)
    spool.put(meta["run_id"], result)
    spool.finish_run(meta["run_id"], meta)
    assert not ingest_pending(tmp_path / "data").rejected
    con = connect(tmp_path / "data")
    try:
        assert con.execute("SELECT count(*), sum(process_count) FROM gpu_samples").fetchone() == (2, 3)
        index = reports.build_site(con, tmp_path / "site")
    finally:
        con.close()
    page = next((tmp_path / "site" / "hosts").glob("*.html")).read_text()
    user = pwd.getpwuid(os.getuid()).pw_name
    assert "NVIDIA H100 80GB HBM3" in page and user in page
    assert "&lt;redacted&gt;" in page and gpu_worker.secret not in page
    assert "gpu01" in index.read_text()
    # The MIG GPU's instances are stored and listed under it.
    mig = [d for d in document["gpus"]["devices"] if d["mig_devices"]]
    assert mig and "MIG instances" in page
    for m in mig[0]["mig_devices"]:
        assert m["uuid"] in page


@pytest.mark.skipif(_has_driver(), reason="an NVIDIA driver is present here")
def test_the_real_pynvml_without_a_driver_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "collectors.pynvml_shipped", None)  # the installed nvidia-ml-py
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    document = collectors.collect(only="gpus")
    assert document["gpus"] == {"available": False, "devices": [],
                                "reason": "no NVIDIA driver loaded (no /proc/driver/nvidia/version)"}
    assert document["errors"] == [] and "pynvml" not in sys.modules  # not even imported: it costs ~100 ms
    # Past the cheap check (a driver file, but no library), the real pynvml says why.
    monkeypatch.setattr(gpus, "driver_present", lambda: True)
    document = collectors.collect(only="gpus")
    assert document["gpus"]["reason"] == "NVML library not found (no NVIDIA driver)"


@pytest.mark.skipif(not _has_driver(), reason="no NVIDIA driver here")
def test_a_real_gpu_document_passes_the_warehouse(check_document, as_result):
    document = check_document(collectors.collect(top_n=3))
    assert document["errors"] == [] and document["gpus"]["available"] is True
    for device in document["gpus"]["devices"]:
        assert device["errors"] == [], device["errors"]
        assert device["name"] and device["mem_total_bytes"] > 0 and device["energy_mj"] is not None
    assert document["host"]["nvidia_driver"] and os.path.exists("/proc/driver/nvidia/version")
    host_rows(as_result(document), "run-1")


NOT_AVAILABLE = real.NVML_VALUE_NOT_AVAILABLE_uint.value  # 0xFFFFFFFF


def test_accounting_utilization_not_available_is_null(fake_nvml, check_document, as_result):
    """NVML gives NVML_VALUE_NOT_AVAILABLE for an accounting record's utilization it could not sample."""
    now = fake_nvml.host.now
    fake_nvml.host.accounting[31002] = (NOT_AVAILABLE, NOT_AVAILABLE, 30 * GIB, now - 600, 300_000, 0)
    document = check_document(collectors.collect(only=["gpus", "host"]))
    ended = next(r for r in document["gpus"]["devices"][1]["accounting"] if r["pid"] == 31002)
    assert (ended["gpu_util_pct"], ended["mem_util_pct"], ended["max_mem_bytes"]) == (None, None, 30 * GIB)
    assert ended["started_at"] == iso(now - 600) and ended["duration_s"] == 300.0
    rows = host_rows(as_result(document), "run-1")  # the warehouse takes the whole host
    assert [r["gpu_util_pct"] for r in rows["gpu_processes"] if r["pid"] == 31002] == [None]


@pytest.mark.parametrize("start", [2**63 / 1e6, 7_500_000_000])  # years 294247 and 2207
def test_a_bogus_accounting_start_time_costs_only_that_time(fake_nvml, check_document, as_result, start):
    fake_nvml.host.accounting[31002] = (90, 40, 30 * GIB, start, 300_000, 0)
    document = check_document(collectors.collect(only=["gpus", "host"]))
    assert document["errors"] == [] and document["host"]["gpu_models"] == ["NVIDIA H100 80GB HBM3"]
    devices = document["gpus"]["devices"]
    assert [d["name"] for d in devices] == ["NVIDIA H100 80GB HBM3"] * 2 and devices[1]["errors"] == []
    records = devices[1]["accounting"]
    assert [r["pid"] for r in records][:2] == [31001, 31002] and len(records) == 3
    bogus = records[1]  # kept, without its start
    assert (bogus["started_at"], bogus["gpu_util_pct"], bogus["duration_s"], bogus["running"]) == (
        None, 90, 300.0, False)
    assert records[0]["started_at"] is not None and records[2]["started_at"] is not None
    host_rows(as_result(document), "run-1")


def test_a_running_accounting_record_without_a_usable_start_keeps_the_rest(fake_nvml, gpu_worker, check_document):
    fake_nvml.host.accounting[gpu_worker.pid] = (99, 45, 24 * GIB, 2**63 / 1e6, 0, 1)
    document = check_document(collectors.collect(only="gpus"))
    running = document["gpus"]["devices"][1]["accounting"][2]
    assert (running["pid"], running["running"], running["started_at"], running["duration_s"]) == (
        gpu_worker.pid, True, None, None)
    assert running["gpu_util_pct"] == 99 and running["max_mem_bytes"] == 24 * GIB


@pytest.mark.parametrize("code, name", [
    (real.NVML_ERROR_NO_PERMISSION, "NVMLError_NoPermission"),
    (real.NVML_ERROR_NOT_FOUND, "NVMLError_NotFound"),
    (real.NVML_ERROR_NOT_SUPPORTED, "NVMLError_NotSupported"),
    (real.NVML_ERROR_GPU_IS_LOST, "NVMLError_GpuIsLost"),
])
def test_a_gpu_whose_handle_fails_always_says_why(fake_nvml, monkeypatch, check_document, as_result, code, name):
    """Even an error that means "not supported" for a field leaves the whole GPU unread: it is recorded."""
    handle_by_index = fake_nvml.nvmlDeviceGetHandleByIndex

    def handle(index):
        if index == 0:
            raise real.NVMLError(code)
        return handle_by_index(index)

    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetHandleByIndex", handle)
    document = check_document(collectors.collect(only=["gpus", "host"]))
    unread, read = document["gpus"]["devices"]
    assert tuple(unread) == gpus.DEVICE_FIELDS and unread["index"] == 0 and unread["name"] is None
    assert [(e["call"], e["type"]) for e in unread["errors"]] == [("nvmlDeviceGetHandleByIndex", name)]
    assert read["name"] == "NVIDIA H100 80GB HBM3" and read["errors"] == [] and read["processes"]
    assert document["errors"] == [] and document["host"]["gpu_models"] == ["NVIDIA H100 80GB HBM3"]
    host_rows(as_result(document), "run-1")


@pytest.mark.parametrize("listing", ["nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"])
@pytest.mark.parametrize("code, recorded", [
    (real.NVML_ERROR_FUNCTION_NOT_FOUND, False),  # an old driver: quiet
    (real.NVML_ERROR_NO_PERMISSION, False),
    (real.NVML_ERROR_UNKNOWN, True),
])
def test_processes_are_null_when_nvml_will_not_list_them_all(fake_nvml, check_document, as_result, listing, code,
                                                             recorded):
    """A list without the compute (or graphics) processes would pass for a GPU that runs none of them."""
    fake_nvml.host.fail[listing] = real.NVMLError(code)
    document = check_document(collectors.collect(only="gpus"))
    for device in document["gpus"]["devices"]:
        assert device["processes"] is None
        assert [e["call"] for e in device["errors"]] == ([listing] if recorded else [])
        assert device["name"] == "NVIDIA H100 80GB HBM3"
    assert document["gpus"]["devices"][1]["accounting"]  # the rest of the GPU is still read
    rows = host_rows(as_result(document), "run-1")
    assert [r["process_count"] for r in rows["gpu_samples"]] == [0, 0]


def test_a_value_of_an_unexpected_shape_costs_its_gpu_only(fake_nvml, monkeypatch, check_document, as_result):
    """A driver or pynvml this code was not tried with returns a value it cannot use (here: GPU 1's power as
    text): that GPU is an entry of nulls saying why; GPU 0 and the host's GPU facts stay."""
    power, calls = fake_nvml.nvmlDeviceGetPowerUsage, []

    def odd_power(handle):  # GPUs are read in index order: the second call is GPU 1's
        calls.append(handle)
        return "N/A" if len(calls) == 2 else power(handle)

    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetPowerUsage", odd_power)
    document = check_document(collectors.collect(only=["gpus", "host"]))
    read, unread = document["gpus"]["devices"]
    assert read["index"] == 0 and read["power_w"] is not None and read["errors"] == []
    assert tuple(unread) == gpus.DEVICE_FIELDS and unread["index"] == 1 and unread["name"] is None
    assert [(e["call"], e["type"]) for e in unread["errors"]] == [("device", "TypeError")]
    assert document["errors"] == [] and document["host"]["gpu_models"] == ["NVIDIA H100 80GB HBM3"]
    assert len(host_rows(as_result(document), "run-1")["gpu_samples"]) == 2


def test_host_alone_keeps_its_facts_when_nvml_fails(fake_nvml):
    """`hosts check` collects host alone: NVML failing after its init costs the NVIDIA facts, not the host."""
    fake_nvml.host.fail["nvmlDeviceGetCount"] = real.NVMLError(real.NVML_ERROR_UNKNOWN)
    document = collectors.collect(only=["host"])
    host = document["host"]
    assert host["hostname"] and host["kernel"] and host["nvidia_driver"] is None and host["gpu_models"] == []
    assert [(e["subsystem"], e["type"]) for e in document["errors"]] == [("host.nvidia", "NVMLError_Unknown")]


def test_a_gpu_lost_mid_read_says_so_once_and_is_not_read_further(fake_nvml, check_document, as_result):
    """NVML answers GpuIsLost from the second read on (the UUID): the GPU keeps what it had read (its index),
    has one error, not one per field, and NVML is not asked the rest (each would wait on the driver)."""
    fake_nvml.host.fail["nvmlDeviceGetUUID"] = real.NVMLError(real.NVML_ERROR_GPU_IS_LOST)
    asked = []
    for name in ("nvmlDeviceGetName", "nvmlDeviceGetTemperature", "nvmlDeviceGetComputeRunningProcesses"):
        original = getattr(fake_nvml, name)
        setattr(fake_nvml, name, lambda *a, _name=name, _original=original: asked.append(_name) or _original(*a))
    document = check_document(collectors.collect(only=["gpus"]))
    for device in document["gpus"]["devices"]:
        assert [(e["call"], e["type"]) for e in device["errors"]] == [("nvmlDeviceGetUUID", "NVMLError_GpuIsLost")]
        assert device["name"] is None and device["temperature_c"] is None and device["processes"] is None
    assert asked == [] and document["errors"] == []
    assert len(host_rows(as_result(document), "run-1")["gpu_samples"]) == 2


# -- values NVML encodes: each decoded as docs/document.md says -------------------------------------------
def test_the_cuda_version_keeps_its_minor_digit(monkeypatch, fake_nvml):
    """NVML gives the CUDA driver version as 1000 * major + 10 * minor: 12040 is CUDA 12.4. The fake's
    13000 reads as "13.0" whichever way the minor is taken; 12040 does not ("12.40" or "12.0" are wrong)."""
    monkeypatch.setattr(fake_nvml, "nvmlSystemGetCudaDriverVersion", lambda: 12040)
    document = collectors.collect(only=["host"])
    assert document["host"]["cuda_version"] == "12.4"


def test_an_unknown_performance_state_is_null(monkeypatch, fake_nvml, check_document, as_result):
    """NVML answers 32 (NVML_PSTATE_UNKNOWN) when it cannot tell the P-state: not a state, so null. Stored
    as 32 it would pass for a deeper idle state than any real one (P0..P15)."""
    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetPerformanceState", lambda h: (0, 32)[h.index])
    document = check_document(collectors.collect(only=["gpus"]))
    assert [d["pstate"] for d in document["gpus"]["devices"]] == [0, None]
    assert all(d["errors"] == [] for d in document["gpus"]["devices"])
    assert [r["pstate"] for r in host_rows(as_result(document), "run-1")["gpu_samples"]] == [0, None]


def test_remapped_rows_pending_and_failure_are_told_apart(monkeypatch, fake_nvml):
    """nvmlDeviceGetRemappedRows returns (correctable, uncorrectable, pending, failure): a row remap that
    waits for the next GPU reset is pending, not a failed remap (which means the GPU needs replacing)."""
    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetRemappedRows", lambda h: ((0, 0, 0, 0), (0, 0, 1, 0))[h.index])
    idle, pending = collectors.collect(only=["gpus"])["gpus"]["devices"]
    assert (idle["remapped_rows_pending"], idle["remapped_rows_failure"]) == (False, False)
    assert (pending["remapped_rows_correctable"], pending["remapped_rows_uncorrectable"]) == (0, 0)
    assert (pending["remapped_rows_pending"], pending["remapped_rows_failure"]) == (True, False)


@pytest.mark.parametrize("pages, expected", [
    ({0: 2, 1: 3}, 5),  # both causes: multiple single-bit ECC errors, and a double-bit one
    ({0: 2}, 2),  # only cause 0 answers (cause 1 not supported): its pages still count
])
def test_retired_pages_count_both_causes(monkeypatch, fake_nvml, pages, expected):
    """A pre-Ampere GPU retires pages for two causes (NVML_PAGE_RETIREMENT_CAUSE_*): retired_pages is their
    sum; a cause NVML will not answer for counts nothing, and does not make the whole count unknown."""
    def retired(h, cause):
        if cause not in pages:
            raise real.NVMLError(real.NVML_ERROR_NOT_SUPPORTED)
        return [0x1000 * (cause + 1) + i for i in range(pages[cause])]  # page addresses

    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetRetiredPages", retired)
    devices = collectors.collect(only=["gpus"])["gpus"]["devices"]
    assert [d["retired_pages"] for d in devices] == [expected, expected]
    assert all(d["errors"] == [] for d in devices)


def test_a_process_listed_as_compute_and_graphics_is_one_entry(monkeypatch, fake_nvml, gpu_worker, fake_module):
    """A process using the GPU both ways (CUDA and OpenGL) is in both of NVML's lists: it is one process, of
    type "compute+graphics", not two (which would count it and its memory twice)."""
    def graphics(h):
        return [fake_nvml.host._process(gpu_worker.pid, 24 * GIB)] if h.index == 1 else []

    monkeypatch.setattr(fake_nvml, "nvmlDeviceGetGraphicsRunningProcesses", graphics)
    processes = collectors.collect(only=["gpus"])["gpus"]["devices"][1]["processes"]
    assert [(p["pid"], p["type"]) for p in processes] == [
        (gpu_worker.pid, "compute+graphics"), (fake_module.MISSING_PID + 1, "compute")]
    assert processes[0]["gpu_mem_bytes"] == 24 * GIB and processes[0]["user"] == pwd.getpwuid(os.getuid()).pw_name


def test_the_accounting_since_filter_keeps_a_process_that_ended_after_since(fake_nvml, gpu_worker):
    """``since`` is the host's previous collection: a process that started before it but ended after it ran
    (in part) since then and has not been reported ended yet; it is kept. One that ended before ``since`` was
    reported by an earlier collection and is left out. It is the end (start + time) that decides."""
    now = fake_nvml.host.now
    since = now - 3600
    fake_nvml.host.accounting[31003] = (70, 20, GIB, since - 600, 660_000, 0)  # ended 60 s after since
    fake_nvml.host.accounting[31004] = (70, 20, GIB, since - 600, 540_000, 0)  # ended 60 s before since
    records = collectors.collect(only="gpus", accounting_since=iso(since))["gpus"]["devices"][1]["accounting"]
    assert [r["pid"] for r in records] == [31002, gpu_worker.pid, 31003]
    kept = records[2]
    assert (kept["started_at"], kept["duration_s"], kept["running"]) == (iso(since - 600), 660.0, False)
