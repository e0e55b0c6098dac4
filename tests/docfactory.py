"""Synthetic host documents (docs/document.md, schema_version 1) and spooled runs, for tests.

Plain functions, no pytest: a test builds documents, spools them as a run exactly as `fleetscope collect`
does (fleetscope.spool.Spool), and ingests them through the real warehouse API (`ingest_pending`).

    t0 = datetime(2026, 11, 23, 9, 0)
    doc = document("gpu01", t0, cpu_busy=0.5, gpus=[gpu(0, util=97, processes=[gpu_process(1234, "alice")])])
    spool_run(data_dir, t0, [ok("gpu01", t0, doc), unreachable("lost01", t0)])
    ingest_pending(data_dir)
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from fleetscope.spool import Spool

GIB = 1024**3
BOOT = datetime(2026, 11, 1, 8, 0)
USER_HZ = 100


def iso_z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso(t: datetime) -> str:
    """The controller's own format for times in the spool (naive UTC, space separated)."""
    return t.isoformat(sep=" ", timespec="microseconds")


def jiffies(at: datetime, cores: int, busy: float) -> Dict[str, int]:
    """Cumulative /proc/stat counters at ``at`` for a host that has been ``busy`` (0..1) since BOOT, so
    two samples give exactly ``busy`` as CPU use between them."""
    total = int((at - BOOT).total_seconds() * USER_HZ * cores)
    used = int(total * busy)
    return {"user": used * 3 // 4, "nice": 0, "system": used - used * 3 // 4, "idle": total - used,
            "iowait": 0, "irq": 0, "softirq": 0, "steal": 0}


def gpu_process(pid: int, user: str = "alice", command: str = "python train.py",
                gpu_mem_bytes: int = 10 * GIB, started_at: Optional[str] = None) -> Dict[str, Any]:
    return {"pid": pid, "type": "compute", "gpu_mem_bytes": gpu_mem_bytes, "user": user, "command": command,
            "started_at": started_at, "mig_gi": None, "mig_ci": None}


def top_process(pid: int, user: str = "alice", command: str = "python train.py", *, cpu_time_s: float = 3600.0,
                cpu_percent: float = 99.0, rss_bytes: int = 4 * GIB,
                started_at: datetime = datetime(2026, 11, 23, 1, 0)) -> Dict[str, Any]:
    """One of a document's processes.top (a top consumer by CPU time or memory)."""
    return {"pid": pid, "user": user, "command": command, "cpu_time_s": cpu_time_s, "cpu_percent": cpu_percent,
            "rss_bytes": rss_bytes, "started_at": iso_z(started_at), "state": "R"}


def gpu(index: int, *, util: float = 0, mem_used_bytes: int = 1 * GIB, temperature_c: float = 40,
        power_w: float = 80.0, energy_mj: int = 10**9, processes: Sequence[Dict[str, Any]] = (),
        name: str = "NVIDIA H100 80GB HBM3") -> Dict[str, Any]:
    return {
        "index": index, "uuid": f"GPU-{index:08d}-0000-0000-0000-000000000000", "name": name,
        "serial": f"165{index:010d}", "bus_id": f"00000000:{0x18 + index:02X}:00.0",
        "utilization_gpu_pct": util, "utilization_mem_pct": util / 2,
        "utilization_gpu_avg_pct": util, "utilization_samples": 70,
        "mem_total_bytes": 80 * GIB, "mem_used_bytes": mem_used_bytes, "mem_reserved_bytes": 512 * 1024**2,
        "temperature_c": temperature_c, "temperature_mem_c": temperature_c + 8,
        "power_w": power_w, "power_limit_w": 700.0, "energy_mj": energy_mj, "fan_pct": None,
        "clock_sm_mhz": 1980, "clock_mem_mhz": 2619, "clock_sm_max_mhz": 1980, "pstate": 0,
        "throttle_reasons": [], "throttle_mask": 0, "ecc_mode": True,
        "ecc_volatile_corrected": 0, "ecc_volatile_uncorrected": 0,
        "ecc_aggregate_corrected": 0, "ecc_aggregate_uncorrected": 0,
        "remapped_rows_correctable": 0, "remapped_rows_uncorrectable": 0,
        "remapped_rows_pending": False, "remapped_rows_failure": False, "retired_pages": None,
        "persistence_mode": True, "compute_mode": "default", "mig_mode": False, "accounting_mode": False,
        "pcie_gen": 5, "pcie_width": 16,
        "processes": list(processes), "accounting": [], "mig_devices": [], "errors": [],
    }


def document(hostname: str, at: datetime, *, cores: int = 16, cpu_busy: float = 0.25,
             mem_total_bytes: int = 64 * GIB, mem_used_bytes: int = 16 * GIB,
             gpus: Optional[List[Dict[str, Any]]] = None, os_name: str = "Debian GNU/Linux 12 (bookworm)",
             top: Sequence[Dict[str, Any]] = (), errors: Sequence[Dict[str, Any]] = ()) -> Dict[str, Any]:
    """A full host document collected at ``at`` (host clock = controller clock). ``gpus`` None: no NVML."""
    devices = list(gpus or [])
    gpu_block: Dict[str, Any] = (
        {"available": True, "reason": None, "devices": devices} if gpus is not None
        else {"available": False, "reason": "NVML library not found (no NVIDIA driver)", "devices": []}
    )
    return {
        "schema_version": 1,
        "collector_version": "0.1.0",
        "time": {"collected_at": iso_z(at), "duration_s": 0.041},
        "host": {
            "hostname": hostname, "fqdn": f"{hostname}.lab", "os": os_name, "kernel": "6.1.0-18-amd64",
            "arch": "x86_64", "cpu_model": "AMD EPYC 7763 64-Core Processor", "cpu_logical": cores,
            "cpu_physical": cores // 2, "mem_total_bytes": mem_total_bytes, "boot_time": iso_z(BOOT),
            "python": "3.11.2",
            "nvidia_driver": "580.65.06" if devices else None, "cuda_version": "13.0" if devices else None,
            "nvml_version": "13.580.65.06" if devices else None,
            "gpu_models": sorted({d["name"] for d in devices}),
        },
        "cpu": {"logical": cores, "jiffies": jiffies(at, cores, cpu_busy), "user_hz": USER_HZ},
        "load": {"load1": cores * cpu_busy, "load5": cores * cpu_busy, "load15": cores * cpu_busy,
                 "procs_running": 2, "procs_total": 520},  # threads
        "memory": {
            "total_bytes": mem_total_bytes, "available_bytes": mem_total_bytes - mem_used_bytes,
            "used_bytes": mem_used_bytes, "buffers_bytes": GIB, "cached_bytes": 4 * GIB,
            "swap_total_bytes": 8 * GIB, "swap_used_bytes": 0, "oom_kills": 0,
        },
        "disks": {
            "filesystems": [{"mount": "/", "device": "/dev/sda1", "fstype": "ext4", "total_bytes": 500 * GIB,
                             "used_bytes": 120 * GIB, "free_bytes": 380 * GIB, "inodes_total": 10**7,
                             "inodes_used": 10**6}],
            "io": [{"device": "sda", "read_bytes": 10**9, "write_bytes": 10**9, "reads": 10**5,
                    "writes": 10**5, "io_time_ms": 10**6}],
        },
        "network": {"interfaces": [{"name": "eth0", "rx_bytes": 10**9, "tx_bytes": 10**9, "rx_packets": 10**6,
                                    "tx_packets": 10**6, "rx_errors": 0, "tx_errors": 0, "rx_dropped": 0,
                                    "tx_dropped": 0}]},
        "processes": {"total": 400, "others_hidden": False, "top": list(top)},
        "gpus": gpu_block,
        "errors": list(errors),
    }


def ok(host: str, at: datetime, doc: Dict[str, Any]) -> Dict[str, Any]:
    """A spooled result for a host that answered (as fleetscope.collect writes it)."""
    return {"host": host, "status": "ok", "message": "", "ts": iso(at), "document": doc}


def unreachable(host: str, at: datetime, message: str = "ssh: No route to host") -> Dict[str, Any]:
    return {"host": host, "status": "unreachable", "message": message, "ts": iso(at), "document": None}


def spool_run(data_dir: Path, started: datetime, results: Sequence[Dict[str, Any]],
              duration: timedelta = timedelta(seconds=5)) -> str:
    """Spool one finished run of ``results``; returns its run id. Ingest with ingest_pending(data_dir)."""
    run_id = started.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(2)
    spool = Spool(data_dir)
    hosts = [r["host"] for r in results]
    spool.start_run(run_id, {"run_id": run_id, "started_at": iso(started), "finished_at": None,
                             "inventory": "inventory.ini", "hosts": hosts, "fleetscope_version": "0.1.0"})
    for result in results:
        spool.put(run_id, result)
    spool.finish_run(run_id, {"run_id": run_id, "started_at": iso(started),
                              "finished_at": iso(started + duration), "inventory": "inventory.ini",
                              "hosts": hosts, "runner_status": "successful", "fleetscope_version": "0.1.0"})
    return run_id


def admin_action(data_dir: Path, at: datetime, host: str, args: Dict[str, Any], *, status: str = "ok",
                 check_mode: bool = False, changed: bool = True, message: str = "done",
                 operator: Optional[str] = None) -> None:
    """Record a `fleetscope admin` action that ended at ``at``, through fleetscope.admin.record itself.
    ``operator`` None: the login name, as `fleetscope admin` records it."""
    from unittest import mock

    from fleetscope import admin

    result = admin.AdminResult(host, args["action"], admin.describe(args["action"], args), status, changed,
                               message, check_mode)
    if operator is None:
        admin.record(data_dir, result, args, now=at)
        return
    with mock.patch.object(admin.getpass, "getuser", return_value=operator):
        admin.record(data_dir, result, args, now=at)
