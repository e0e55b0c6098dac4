"""Fixtures for the collector tests: a fake NVML shaped like an H100 host, a process for it to report,
and a checker of the document's shape and types as docs/document.md gives them."""

import datetime
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("fleetscope_fake_pynvml", Path(__file__).with_name("fake_pynvml.py"))
fake_pynvml = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_pynvml)

SECRET = "hunter2"


@pytest.fixture
def gpu_worker():
    """A live process with a secret on its command line, which the fake GPU 1 reports as its user."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "--password=" + SECRET, "--token", SECRET]
    )
    deadline = time.time() + 10
    while time.time() < deadline:  # wait until exec has replaced the forked child's command line
        try:
            if SECRET.encode() in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
                break
        except OSError:
            pass
        time.sleep(0.01)
    proc.secret = SECRET
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def fake_module():
    """tests/collectors/fake_pynvml.py (loaded by path: test folders here are not packages)."""
    return fake_pynvml


@pytest.fixture
def make_fake_nvml(monkeypatch, gpu_worker):
    """Build a fake pynvml and install it where the collector looks first (the shipped copy)."""

    def make(**kwargs):
        fake = fake_pynvml.make(gpu_worker.pid, **kwargs)
        monkeypatch.setitem(sys.modules, "collectors.pynvml_shipped", fake)
        # The fake stands for a host with the driver loaded: its kernel files exist there.
        monkeypatch.setattr("collectors.gpus.driver_present", lambda: True)
        return fake

    return make


@pytest.fixture
def fake_nvml(make_fake_nvml):
    return make_fake_nvml()


# -- the document's shape, per docs/document.md ----------------------------------------------------
class Time:
    """An ISO 8601 UTC time ending in Z."""


NUM = (int, float)
HOST = {
    "hostname": str, "fqdn": str, "os": str, "kernel": str, "arch": str, "cpu_model": str,
    "cpu_logical": int, "cpu_physical": int, "mem_total_bytes": int, "boot_time": Time, "python": str,
    "nvidia_driver": str, "cuda_version": str, "nvml_version": str, "gpu_models": [str],
}
CPU = {"logical": int, "user_hz": int, "jiffies": {
    k: int for k in ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")}}
LOAD = {"load1": NUM, "load5": NUM, "load15": NUM, "procs_running": int, "procs_total": int}
MEMORY = {k: int for k in ("total_bytes", "available_bytes", "used_bytes", "buffers_bytes", "cached_bytes",
                           "swap_total_bytes", "swap_used_bytes", "oom_kills")}
DISKS = {
    "filesystems": [{"mount": str, "device": str, "fstype": str, "total_bytes": int, "used_bytes": int,
                     "free_bytes": int, "inodes_total": int, "inodes_used": int}],
    "io": [{"device": str, "read_bytes": int, "write_bytes": int, "reads": int, "writes": int,
            "io_time_ms": int}],
}
NETWORK = {"interfaces": [dict({"name": str}, **{k: int for k in (
    "rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped")})]}
PROCESSES = {"total": int, "others_hidden": bool, "top": [{
    "pid": int, "user": str, "command": str, "cpu_time_s": NUM, "cpu_percent": NUM, "rss_bytes": int,
    "started_at": Time, "state": str}]}
GPU_DEVICE = {
    "index": int, "uuid": str, "name": str, "serial": str, "bus_id": str,
    "utilization_gpu_pct": int, "utilization_mem_pct": int, "utilization_gpu_avg_pct": NUM,
    "utilization_samples": int, "mem_total_bytes": int, "mem_used_bytes": int, "mem_reserved_bytes": int,
    "temperature_c": int, "temperature_mem_c": int, "power_w": float, "power_limit_w": float,
    "energy_mj": int, "fan_pct": int, "clock_sm_mhz": int, "clock_mem_mhz": int, "clock_sm_max_mhz": int,
    "pstate": int, "throttle_reasons": [str], "throttle_mask": int, "ecc_mode": bool,
    "ecc_volatile_corrected": int, "ecc_volatile_uncorrected": int,
    "ecc_aggregate_corrected": int, "ecc_aggregate_uncorrected": int,
    "remapped_rows_correctable": int, "remapped_rows_uncorrectable": int,
    "remapped_rows_pending": bool, "remapped_rows_failure": bool, "retired_pages": int,
    "persistence_mode": bool, "compute_mode": str, "mig_mode": bool, "accounting_mode": bool,
    "pcie_gen": int, "pcie_width": int,
    "processes": [{"pid": int, "type": str, "gpu_mem_bytes": int, "user": str, "command": str,
                   "started_at": Time, "mig_gi": int, "mig_ci": int}],
    "accounting": [{"pid": int, "user": str, "gpu_util_pct": int, "mem_util_pct": int, "max_mem_bytes": int,
                    "started_at": Time, "duration_s": NUM, "running": bool}],
    "mig_devices": [{"index": int, "uuid": str, "gi_id": int, "ci_id": int, "slices": int,
                     "mem_total_bytes": int, "mem_used_bytes": int}],
    "errors": [{"call": str, "type": str, "message": str}],
}
GPUS = {"available": bool, "reason": str, "devices": [GPU_DEVICE]}
XID = {"available": bool, "reason": str, "truncated": bool, "boot_id": str,
       "events": [{"at": Time, "seq": int, "pci": str, "xid": int, "message": str}]}
DOCUMENT = {
    "schema_version": int, "collector_version": str, "time": {"collected_at": Time, "duration_s": NUM},
    "host": HOST, "cpu": CPU, "load": LOAD, "memory": MEMORY, "disks": DISKS, "network": NETWORK,
    "processes": PROCESSES, "gpus": GPUS, "xid": XID,
    "errors": [{"subsystem": str, "type": str, "message": str}],
}


def check(value, spec, path="document"):
    """Assert ``value`` has the shape ``spec``; any value may be null (a subsystem, a field, a list)."""
    if value is None:
        return
    if isinstance(spec, dict):
        assert isinstance(value, dict), path
        assert set(value) == set(spec), f"{path}: keys {sorted(value)}, documented {sorted(spec)}"
        for key, sub in spec.items():
            check(value[key], sub, f"{path}.{key}")
    elif isinstance(spec, list):
        assert isinstance(value, list), path
        for i, item in enumerate(value):
            check(item, spec[0], f"{path}[{i}]")
    elif spec is Time:
        assert isinstance(value, str) and value.endswith("Z"), f"{path}: {value!r}"
        datetime.datetime.fromisoformat(value[:-1])
    elif spec is bool:
        assert isinstance(value, bool), f"{path}: {value!r} is not a bool"
    else:
        assert isinstance(value, spec) and not isinstance(value, bool), f"{path}: {value!r} is not {spec}"


@pytest.fixture
def check_document():
    def run(document):
        check(document, {k: v for k, v in DOCUMENT.items() if k in document})
        assert document["schema_version"] == 1
        return document

    return run


@pytest.fixture
def as_result():
    """The spooled result around a document, as fleetscope.warehouse.rows.host_rows takes it."""

    def wrap(document, host="gpu01"):
        return {"host": host, "status": "ok", "message": "", "ts": document["time"]["collected_at"],
                "document": document}

    return wrap
