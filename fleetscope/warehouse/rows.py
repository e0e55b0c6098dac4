"""Turn one spooled host result into warehouse rows, validating the document on the way.

The document schema (docs/document.md) is known here and nowhere else on the controller. A document
that breaks it raises DocumentError naming the host and the field; the caller keeps it aside and goes
on with the other hosts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math

from ..text import clean_text

SCHEMA_VERSION = 1
MAX_TEXT = 4096  # longer host-provided strings are cut: a document cannot bloat the warehouse
FIRST_YEAR, LAST_YEAR = 1970, 2200  # times outside are refused
STATUSES = ("ok", "unreachable", "failed", "timeout")
BIGINT_MAX = 2**63 - 1
MAX_GPU_INDEX = 1023  # NVML counts a host's GPUs from 0; a larger index is a broken document, not a GPU
NO_UUID = "index:"  # gpu_uuid of a GPU whose UUID NVML could not read: "index:<its index>"


class DocumentError(ValueError):
    def __init__(self, host: str, field: str, message: str):
        super().__init__(f"host {host!r}: field {field!r}: {message}")
        self.host, self.field = host, field


class _Reader:
    """Typed access to one document: each accessor checks the type and names the field on failure."""

    def __init__(self, host: str):
        self.host = host

    def fail(self, path: str, message: str):
        raise DocumentError(self.host, path, message)

    def obj(self, parent: dict, key: str, path: str, optional: bool = True) -> dict | None:
        v = parent.get(key)
        if v is None:
            if optional:
                return None
            self.fail(path, "missing")
        if not isinstance(v, dict):
            self.fail(path, f"expected an object, got {type(v).__name__}")
        return v

    def list(self, parent: dict, key: str, path: str) -> list:
        v = parent.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            self.fail(path, f"expected a list, got {type(v).__name__}")
        return v

    def num(self, parent: dict, key: str, path: str, lo: float | None = 0, integer: bool = False,
            hi: float = BIGINT_MAX):
        v = parent.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(f"{path}.{key}", f"expected a number, got {type(v).__name__}")
        if isinstance(v, float) and not math.isfinite(v):
            self.fail(f"{path}.{key}", f"not a finite number: {v}")
        if lo is not None and v < lo:
            self.fail(f"{path}.{key}", f"must be >= {lo}, got {v}")
        if integer and (v != int(v) or abs(v) > BIGINT_MAX):
            self.fail(f"{path}.{key}", f"expected an integer, got {v}")
        if v > hi:  # also what a driver's "not available" (2**32 - 1) would be, were it passed on
            self.fail(f"{path}.{key}", f"must be <= {hi}, got {v}")
        return int(v) if integer else float(v)

    def pct(self, parent: dict, key: str, path: str):
        """A share of 100: utilizations."""
        return self.num(parent, key, path, hi=100)

    def int(self, parent: dict, key: str, path: str, lo: float | None = 0):
        return self.num(parent, key, path, lo, integer=True)

    def int32(self, parent: dict, key: str, path: str, lo: float | None = 0):
        """An integer for an INTEGER column (32 bits): counts, indexes, pids, clocks."""
        return self.num(parent, key, path, lo, integer=True, hi=2**31 - 1)

    def text(self, parent: dict, key: str, path: str):
        v = parent.get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            self.fail(f"{path}.{key}", f"expected a string, got {type(v).__name__}")
        # lone surrogates (valid JSON escapes, not valid text) and bidirectional controls (one left open
        # reverses the text after it on a report page) become U+FFFD
        return _clean(v)

    def flag(self, parent: dict, key: str, path: str):
        v = parent.get(key)
        if v is None:
            return None
        if not isinstance(v, bool):
            self.fail(f"{path}.{key}", f"expected true/false, got {type(v).__name__}")
        return v

    def time(self, parent: dict, key: str, path: str):
        v = self.text(parent, key, path)
        if v is None:
            return None
        try:
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
            if t.tzinfo is not None:
                t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
        except (ValueError, OverflowError):
            self.fail(f"{path}.{key}", f"not an ISO 8601 time: {v[:40]!r}")
        if not FIRST_YEAR <= t.year <= LAST_YEAR:  # a clock never set, or garbage: day sums would overflow
            self.fail(f"{path}.{key}", f"not a time between {FIRST_YEAR} and {LAST_YEAR}: {v[:40]!r}")
        return t


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.isoformat(sep=" ", timespec="microseconds")


def _sum(values):
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def _clean(value: str, most: int = MAX_TEXT) -> str:
    """Host-provided text as the warehouse stores it: at most ``most`` characters, no NULs, and no lone
    surrogates or bidirectional controls (one left open reverses the text after it on a report page)."""
    return clean_text(value[:most].replace("\x00", ""))


def parse_time(value) -> str | None:
    """A spooled result's time as the warehouse stores it, or None where it is not one (a fallback is due)."""
    try:
        t = _Reader("").time({"t": value}, "t", "ts") if isinstance(value, str) else None
    except DocumentError:
        return None
    return _iso(t)


def host_rows(result: dict, run_id: str) -> dict[str, list[dict]]:
    """Rows for every table from one spooled result {"host","status","message","ts","document"}."""
    host = result["host"]
    r = _Reader(host)
    ts = r.time(result, "ts", "ts")
    if ts is None:
        r.fail("ts", "missing")
    status, message = result.get("status"), r.text(result, "message", "result") or None
    if status not in STATUSES:
        r.fail("status", f"expected one of {', '.join(STATUSES)}, got {str(status)[:40]!r}")
    doc = result.get("document")
    status_row = {"run_id": run_id, "ts": _iso(ts), "host": host, "status": status, "message": message,
                  "errors": None, "duration_s": None}
    rows: dict[str, list[dict]] = {"host_status": [status_row]}
    if status != "ok":
        return rows
    if not isinstance(doc, dict):
        r.fail("document", f"expected an object, got {type(doc).__name__}")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        r.fail("schema_version", f"expected {SCHEMA_VERSION}, got {version!r}")

    t = r.obj(doc, "time", "time", optional=False)
    host_ts = r.time(t, "collected_at", "time")
    if host_ts is None:
        r.fail("time.collected_at", "missing")
    duration = r.num(t, "duration_s", "time")
    errors = r.list(doc, "errors", "errors")
    for i, e in enumerate(errors):
        if not isinstance(e, dict):
            r.fail(f"errors[{i}]", "expected an object")
    status_row["errors"] = len(errors)
    status_row["duration_s"] = duration
    if errors:
        status_row["message"] = _clean("; ".join(
            f"{e.get('subsystem')}: {e.get('type')}: {str(e.get('message'))[:200]}" for e in errors))
    base = {"run_id": run_id, "ts": _iso(ts), "host": host}

    h = r.obj(doc, "host", "host") or {}
    cpu = r.obj(doc, "cpu", "cpu") or {}
    jiffies = r.obj(cpu, "jiffies", "cpu.jiffies") or {}
    j = {k: r.int(jiffies, k, "cpu.jiffies") for k in
         ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")}
    load = r.obj(doc, "load", "load") or {}
    mem = r.obj(doc, "memory", "memory") or {}
    disks = r.obj(doc, "disks", "disks") or {}
    net = r.obj(doc, "network", "network") or {}
    gpus = r.obj(doc, "gpus", "gpus") or {}
    devices = r.list(gpus, "devices", "gpus.devices")
    procs = r.obj(doc, "processes", "processes") or {}

    filesystems = []
    for i, fs in enumerate(r.list(disks, "filesystems", "disks.filesystems")):
        path = f"disks.filesystems[{i}]"
        if not isinstance(fs, dict):
            r.fail(path, "expected an object")
        filesystems.append((r.text(fs, "mount", path), r.int(fs, "total_bytes", path), r.int(fs, "used_bytes", path)))
    fullest = max(  # by share only: two as full, one mount unnamed (None), must not compare the names
        ((100.0 * used / total, mount) for mount, total, used in filesystems if total and used is not None),
        default=(None, None), key=lambda share_mount: share_mount[0],
    )
    io = []
    for i, d in enumerate(r.list(disks, "io", "disks.io")):
        if not isinstance(d, dict):
            r.fail(f"disks.io[{i}]", "expected an object")
        io.append((r.int(d, "read_bytes", f"disks.io[{i}]"), r.int(d, "write_bytes", f"disks.io[{i}]")))
    ifaces = []
    for i, n in enumerate(r.list(net, "interfaces", "network.interfaces")):
        if not isinstance(n, dict):
            r.fail(f"network.interfaces[{i}]", "expected an object")
        where = f"network.interfaces[{i}]"
        ifaces.append((r.int(n, "rx_bytes", where), r.int(n, "tx_bytes", where)))

    parts = [j[k] for k in j if k != "steal"] + [j["steal"]]
    boot_time = r.time(h, "boot_time", "host")
    rows["host_samples"] = [base | {
        "host_ts": _iso(host_ts),
        "clock_skew_s": (host_ts - ts).total_seconds(),
        "collect_duration_s": duration,
        "cpu_logical": r.int32(cpu, "logical", "cpu"),
        "cpu_user_hz": r.int32(cpu, "user_hz", "cpu"),
        "cpu_user_jiffies": _sum([j["user"], j["nice"]]),
        "cpu_system_jiffies": _sum([j["system"], j["irq"], j["softirq"]]),
        "cpu_idle_jiffies": _sum([j["idle"], j["iowait"]]),
        "cpu_iowait_jiffies": j["iowait"],
        "cpu_steal_jiffies": j["steal"],
        "cpu_total_jiffies": _sum(parts) if jiffies else None,
        "load1": r.num(load, "load1", "load"),
        "load5": r.num(load, "load5", "load"),
        "load15": r.num(load, "load15", "load"),
        "procs_total": r.int32(load, "procs_total", "load"),
        "mem_total_bytes": r.int(mem, "total_bytes", "memory"),
        "mem_used_bytes": r.int(mem, "used_bytes", "memory"),
        "mem_available_bytes": r.int(mem, "available_bytes", "memory"),
        "swap_total_bytes": r.int(mem, "swap_total_bytes", "memory"),
        "swap_used_bytes": r.int(mem, "swap_used_bytes", "memory"),
        "oom_kills": r.int(mem, "oom_kills", "memory"),
        "net_rx_bytes": _sum(x[0] for x in ifaces),
        "net_tx_bytes": _sum(x[1] for x in ifaces),
        "disk_read_bytes": _sum(x[0] for x in io),
        "disk_write_bytes": _sum(x[1] for x in io),
        "fs_total_bytes": _sum(x[1] for x in filesystems),
        "fs_used_bytes": _sum(x[2] for x in filesystems),
        "fs_max_used_pct": fullest[0],
        "fs_max_used_mount": fullest[1],
        "boot_time": _iso(boot_time),
        "gpu_count": len(devices) if doc.get("gpus") is not None else None,  # gpus null: not known
        "gpu_reason": r.text(gpus, "reason", "gpus"),
        "procs_visible": r.int32(procs, "total", "processes"),
        "procs_hidden": r.flag(procs, "others_hidden", "processes"),  # null from collectors before it
    }]
    sample = rows["host_samples"][0]
    for key, value in sample.items():  # a sum of counters that each fit may not: that sum is unknown
        if isinstance(value, int) and value > BIGINT_MAX:
            sample[key] = None

    gpu_rows, proc_rows, mig_rows = [], [], []
    for i, g in enumerate(devices):
        path = f"gpus.devices[{i}]"
        if not isinstance(g, dict):
            r.fail(path, "expected an object")
        index, uuid = r.num(g, "index", path, integer=True, hi=MAX_GPU_INDEX), r.text(g, "uuid", path)
        if index is None:
            r.fail(f"{path}.index", "missing")
        if uuid is None:  # every query follows a GPU by its UUID: one NVML could not read is told by its index
            uuid = f"{NO_UUID}{index}"
        running = r.list(g, "processes", f"{path}.processes")
        throttle = r.list(g, "throttle_reasons", f"{path}.throttle_reasons")
        gpu_rows.append(base | {
            "gpu_index": index, "gpu_uuid": uuid,
            "name": r.text(g, "name", path), "bus_id": r.text(g, "bus_id", path),
            "utilization_gpu_pct": r.pct(g, "utilization_gpu_pct", path),
            "utilization_mem_pct": r.pct(g, "utilization_mem_pct", path),
            "utilization_gpu_avg_pct": r.pct(g, "utilization_gpu_avg_pct", path),
            "mem_total_bytes": r.int(g, "mem_total_bytes", path),
            "mem_used_bytes": r.int(g, "mem_used_bytes", path),
            "temperature_c": r.num(g, "temperature_c", path, lo=-100),
            "temperature_mem_c": r.num(g, "temperature_mem_c", path, lo=-100),
            "power_w": r.num(g, "power_w", path),
            "power_limit_w": r.num(g, "power_limit_w", path),
            "energy_mj": r.int(g, "energy_mj", path),
            "fan_pct": r.num(g, "fan_pct", path),
            "clock_sm_mhz": r.int32(g, "clock_sm_mhz", path),
            "clock_mem_mhz": r.int32(g, "clock_mem_mhz", path),
            "pstate": r.int32(g, "pstate", path),
            "throttle_reasons": _clean(",".join(str(x)[:64] for x in throttle)),
            "ecc_volatile_uncorrected": r.int(g, "ecc_volatile_uncorrected", path),
            "ecc_aggregate_uncorrected": r.int(g, "ecc_aggregate_uncorrected", path),
            "remapped_rows_uncorrectable": r.int(g, "remapped_rows_uncorrectable", path),
            "remapped_rows_pending": r.flag(g, "remapped_rows_pending", path),
            "remapped_rows_failure": r.flag(g, "remapped_rows_failure", path),
            "persistence_mode": r.flag(g, "persistence_mode", path),
            "compute_mode": r.text(g, "compute_mode", path),
            "mig_mode": r.flag(g, "mig_mode", path),
            "process_count": len(running),
        })
        gpu_base = base | {"gpu_index": index, "gpu_uuid": uuid}
        for k, p in enumerate(running):
            ppath = f"{path}.processes[{k}]"
            if not isinstance(p, dict):
                r.fail(ppath, "expected an object")
            proc_rows.append(gpu_base | {
                "pid": r.int32(p, "pid", ppath), "user": r.text(p, "user", ppath),
                "command": r.text(p, "command", ppath), "gpu_mem_bytes": r.int(p, "gpu_mem_bytes", ppath),
                "type": r.text(p, "type", ppath), "source": "running",
                "gpu_util_pct": None, "started_at": _iso(r.time(p, "started_at", ppath)), "duration_s": None,
            })
        for k, m in enumerate(r.list(g, "mig_devices", f"{path}.mig_devices")):
            mpath = f"{path}.mig_devices[{k}]"
            if not isinstance(m, dict):
                r.fail(mpath, "expected an object")
            mig_rows.append(gpu_base | {
                "mig_index": r.int32(m, "index", mpath), "mig_uuid": r.text(m, "uuid", mpath),
                "gi_id": r.int32(m, "gi_id", mpath), "ci_id": r.int32(m, "ci_id", mpath),
                "slices": r.int32(m, "slices", mpath), "mem_total_bytes": r.int(m, "mem_total_bytes", mpath),
                "mem_used_bytes": r.int(m, "mem_used_bytes", mpath),
            })
        for k, a in enumerate(r.list(g, "accounting", f"{path}.accounting")):
            apath = f"{path}.accounting[{k}]"
            if not isinstance(a, dict):
                r.fail(apath, "expected an object")
            proc_rows.append(gpu_base | {
                "pid": r.int32(a, "pid", apath), "user": r.text(a, "user", apath), "command": None,
                "gpu_mem_bytes": r.int(a, "max_mem_bytes", apath), "type": "compute", "source": "accounting",
                "gpu_util_pct": r.pct(a, "gpu_util_pct", apath),
                "started_at": _iso(r.time(a, "started_at", apath)), "duration_s": r.num(a, "duration_s", apath),
            })
    rows["gpu_samples"] = gpu_rows
    rows["gpu_processes"] = proc_rows
    rows["gpu_mig"] = mig_rows

    top_rows = []
    for k, p in enumerate(r.list(procs, "top", "processes.top")):
        ppath = f"processes.top[{k}]"
        if not isinstance(p, dict):
            r.fail(ppath, "expected an object")
        top_rows.append(base | {
            "pid": r.int32(p, "pid", ppath), "user": r.text(p, "user", ppath),
            "command": r.text(p, "command", ppath), "cpu_time_s": r.num(p, "cpu_time_s", ppath),
            "cpu_percent": r.num(p, "cpu_percent", ppath), "rss_bytes": r.int(p, "rss_bytes", ppath),
            "started_at": _iso(r.time(p, "started_at", ppath)),
        })
    rows["host_processes"] = top_rows
    rows["gpu_xid"], dropped = _xid_rows(r, doc, base, devices)
    if dropped:  # a malformed kernel log event costs itself only: refused, the host's next runs would read it again
        status_row["message"] = _clean("; ".join(filter(None, [status_row["message"], f"xid: {dropped}"])))

    models = sorted({str(m) for m in r.list(h, "gpu_models", "host.gpu_models")})
    facts = {
        "hostname": r.text(h, "hostname", "host"), "fqdn": r.text(h, "fqdn", "host"),
        "os": r.text(h, "os", "host"), "kernel": r.text(h, "kernel", "host"), "arch": r.text(h, "arch", "host"),
        "cpu_model": r.text(h, "cpu_model", "host"), "cpu_logical": r.int32(h, "cpu_logical", "host"),
        "cpu_physical": r.int32(h, "cpu_physical", "host"), "mem_total_bytes": r.int(h, "mem_total_bytes", "host"),
        "boot_time": _iso(boot_time), "python": r.text(h, "python", "host"),
        "nvidia_driver": r.text(h, "nvidia_driver", "host"), "cuda_version": r.text(h, "cuda_version", "host"),
        "gpu_count": len(devices), "gpu_models": _clean(",".join(models)),
    }
    # boot_time is stored but not hashed: it jitters by a second on some kernels, and a reboot is not an
    # inventory change (host_samples.boot_time records reboots).
    hashed = {k: v for k, v in facts.items() if k != "boot_time"}
    facts_hash = hashlib.sha1(json.dumps(hashed, sort_keys=True).encode()).hexdigest()
    # A document without its host or gpus part (the subsystem failed, or the collector's time limit came
    # first) tells no inventory: a row of nulls, or of 0 GPUs, would be a change, and another on the next run.
    complete = doc.get("host") is not None and doc.get("gpus") is not None
    rows["hosts"] = [base | facts | {"facts_hash": facts_hash}] if complete else []
    return rows


def _xid_rows(r: _Reader, doc: dict, base: dict, devices: list) -> tuple[list[dict], str]:
    """gpu_xid rows of the document's Xid events, each told to the GPU of the same document at its PCI address
    (the driver's 0000:18:00 is NVML's 00000000:18:00.0), where NVML still lists it; and what was left out: an
    event that is not as docs/document.md says is left out, not the document (the collector sends the events
    since the host's last stored sample: a refused document would bring the same event back every run)."""
    by_bus = {}
    for g in devices:
        if isinstance(g, dict) and isinstance(g.get("bus_id"), str):
            by_bus[_pci_key(g["bus_id"])] = g
    by_bus.pop(None, None)  # a bus id that does not parse names no GPU
    out, dropped = [], []
    try:
        xid = r.obj(doc, "xid", "xid") or {}
        events, boot_id = r.list(xid, "events", "xid.events"), r.text(xid, "boot_id", "xid")
    except DocumentError as e:
        return [], f"left out: {e}"
    notes = ["more events than a run sends (the latest of each kind are), or the kernel log wrapped since the last "
             "run (events lost)"] if xid.get("truncated") is True else []
    for k, e in enumerate(events):
        path = f"xid.events[{k}]"
        try:
            if not isinstance(e, dict):
                r.fail(path, "expected an object")
            pci = r.text(e, "pci", path)
            gpu = by_bus.get(_pci_key(pci)) if pci else None
            out.append(base | {
                "logged_at": _iso(r.time(e, "at", path)), "boot_id": boot_id, "seq": r.int(e, "seq", path), "pci": pci,
                "gpu_index": gpu.get("index") if gpu and isinstance(gpu.get("index"), int) else None,
                "gpu_uuid": gpu.get("uuid") if gpu and isinstance(gpu.get("uuid"), str) else None,
                "xid": r.int32(e, "xid", path), "message": r.text(e, "message", path),
            })
        except DocumentError as error:
            dropped.append(error)
    if dropped:
        notes.append(f"{len(dropped)} malformed event(s) left out (the first: {str(dropped[0])[:200]})")
    return out, "; ".join(notes)


def _pci_key(address: str) -> tuple | None:
    """(domain, bus, device) of a PCI address written as NVML (00000000:18:00.0) or the driver (0000:18:00)
    writes it, else None."""
    parts = address.split(".")[0].split(":")
    try:
        return tuple(int(p, 16) for p in parts[-3:]) if len(parts) >= 3 else None
    except ValueError:
        return None
