"""Reading NVIDIA GPUs through NVML for the ``gpus`` subsystem: its devices, their processes, MIG devices
and accounting records, and the driver facts.

Apart from gpus.py so that only hosts with the NVIDIA driver compile it (speed: compiling it costs ~3 ms of
CPU, on every run). The constants, and the documented lists (THROTTLE_REASONS, DEVICE_FIELDS), stay in gpus.py.
"""

from ._util import iso_z, owner, owners_and_commands, start_times, text
from .gpus import (
    COMPUTE_MODES,
    DEVICE_FIELDS,
    MEMORY_TEMP_FIELD,
    NOT_AVAILABLE,
    PSTATE_UNKNOWN,
    QUIET_ERRORS,
    THROTTLE_REASONS,
    UTILIZATION_SAMPLES,
)

_VALUE_ATTRS = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")  # by nvmlValueType_t
_LAST_TIME = 7289654400  # 2201-01-01T00:00:00Z: the warehouse takes times from 1970 to 2200


class Reader:
    """Calls NVML functions by name and holds the one policy on which errors mean "no value"."""

    def __init__(self, nvml, one_gpu=False):
        self.nvml = nvml
        self.quiet = tuple(c for c in (getattr(nvml, n, None) for n in QUIET_ERRORS) if isinstance(c, type))
        self.errors = []
        # one_gpu: the reads are all of one GPU; once NVML says it is lost, the others are not tried (each
        # would fail alike, after as long a wait on the driver, and say the same thing again)
        self.one_gpu, self.lost = one_gpu, False

    def read(self, fn, *args, needed=False):
        """nvml.<fn>(*args); None when unsupported (quietly) or failed (recorded in self.errors). ``needed``:
        what everything else of the GPU needs (its handle), whose every failure is recorded, a quiet one too:
        a handle NVML will not give leaves the whole GPU unread, which must say why."""
        if self.lost:
            return None
        func = getattr(self.nvml, fn, None)
        try:
            if func is None:  # an older pynvml without this function
                if not needed:
                    return None
                raise AttributeError(f"pynvml has no {fn}")
            return func(*args)
        except Exception as e:
            if not needed and isinstance(e, self.quiet):
                return None
            self.errors.append({"call": fn, "type": type(e).__name__, "message": text(str(e))[:300]})
            self.lost = self.one_gpu and type(e).__name__ == "NVMLError_GpuIsLost"
            return None

    def first(self, fns, *args):
        """The first of several equivalent functions (newest first) that gives a value."""
        for fn in fns:
            value = self.read(fn, *args)
            if value is not None:
                return value
        return None


def facts(nvml):
    """Driver, CUDA and NVML versions; gpu_models is left empty."""
    reader = Reader(nvml)
    cuda = reader.read("nvmlSystemGetCudaDriverVersion")
    return {
        "nvidia_driver": text(reader.read("nvmlSystemGetDriverVersion")),
        "cuda_version": f"{cuda // 1000}.{cuda % 1000 // 10}" if cuda else None,
        "nvml_version": text(reader.read("nvmlSystemGetNVMLVersion")),
        "gpu_models": [],
    }


def model_names(nvml):
    """The sorted, distinct names of the GPUs, and nothing else read."""
    reader = Reader(nvml)
    names = set()
    for i in range(nvml.nvmlDeviceGetCount()):
        handle = reader.read("nvmlDeviceGetHandleByIndex", i)
        name = text(reader.read("nvmlDeviceGetName", handle)) if handle is not None else None
        if name:
            names.add(name)
    return sorted(names)


def device(nvml, index, since, now):
    """One entry of ``devices``; a GPU whose reading fails in a way Reader does not catch (a value of a shape
    this code does not expect, from a driver or pynvml it was not tried with) is an entry of nulls that says
    why, not the loss of the other GPUs."""
    try:
        return _device(nvml, index, since, now)
    except Exception as e:
        return unread(index, [{"call": "device", "type": type(e).__name__, "message": text(str(e))[:300]}])


def unread(index, errors):
    """The entry of a GPU that could not be read: its index, nulls, and the errors that say why."""
    entry = dict.fromkeys(DEVICE_FIELDS)
    entry.update(index=index, throttle_reasons=[], accounting=[], mig_devices=[], errors=errors)
    return entry


def _device(nvml, index, since, now):
    reader = Reader(nvml, one_gpu=True)
    read = reader.read
    handle = read("nvmlDeviceGetHandleByIndex", index, needed=True)
    if handle is None:
        return unread(index, reader.errors)
    d = {"index": index}
    d["uuid"] = text(read("nvmlDeviceGetUUID", handle))
    d["name"] = text(read("nvmlDeviceGetName", handle))
    d["serial"] = text(read("nvmlDeviceGetSerial", handle))
    pci = read("nvmlDeviceGetPciInfo", handle)
    d["bus_id"] = text(pci.busId) if pci is not None else None

    util = read("nvmlDeviceGetUtilizationRates", handle)
    d["utilization_gpu_pct"] = util.gpu if util is not None else None
    d["utilization_mem_pct"] = util.memory if util is not None else None
    d["utilization_gpu_avg_pct"], d["utilization_samples"] = _average_utilization(reader, handle)

    d["mem_total_bytes"], d["mem_used_bytes"], d["mem_reserved_bytes"] = _memory(reader, handle)
    d["temperature_c"] = read("nvmlDeviceGetTemperature", handle, 0)  # NVML_TEMPERATURE_GPU
    d["temperature_mem_c"] = _field_value(reader, handle, MEMORY_TEMP_FIELD)
    power_mw = read("nvmlDeviceGetPowerUsage", handle)
    d["power_w"] = power_mw / 1000.0 if power_mw is not None else None
    limit_mw = read("nvmlDeviceGetEnforcedPowerLimit", handle)
    d["power_limit_w"] = limit_mw / 1000.0 if limit_mw is not None else None
    d["energy_mj"] = read("nvmlDeviceGetTotalEnergyConsumption", handle)
    d["fan_pct"] = read("nvmlDeviceGetFanSpeed", handle)

    d["clock_sm_mhz"] = read("nvmlDeviceGetClockInfo", handle, 1)  # NVML_CLOCK_SM
    d["clock_mem_mhz"] = read("nvmlDeviceGetClockInfo", handle, 2)  # NVML_CLOCK_MEM
    d["clock_sm_max_mhz"] = read("nvmlDeviceGetMaxClockInfo", handle, 1)
    pstate = read("nvmlDeviceGetPerformanceState", handle)
    d["pstate"] = pstate if pstate != PSTATE_UNKNOWN else None
    mask = reader.first(("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"),
                        handle)
    d["throttle_reasons"] = throttle_names(mask) if mask is not None else []
    d["throttle_mask"] = mask

    ecc = read("nvmlDeviceGetEccMode", handle)
    d["ecc_mode"] = bool(ecc[0]) if ecc is not None else None
    for counter, counter_name in ((0, "volatile"), (1, "aggregate")):  # NVML_VOLATILE_ECC, NVML_AGGREGATE_ECC
        for kind, kind_name in ((0, "corrected"), (1, "uncorrected")):  # NVML_MEMORY_ERROR_TYPE_*
            d[f"ecc_{counter_name}_{kind_name}"] = (
                read("nvmlDeviceGetTotalEccErrors", handle, kind, counter) if d["ecc_mode"] else None
            )
    rows = read("nvmlDeviceGetRemappedRows", handle)
    d["remapped_rows_correctable"] = rows[0] if rows is not None else None
    d["remapped_rows_uncorrectable"] = rows[1] if rows is not None else None
    d["remapped_rows_pending"] = bool(rows[2]) if rows is not None else None
    d["remapped_rows_failure"] = bool(rows[3]) if rows is not None else None
    d["retired_pages"] = _retired_pages(reader, handle)

    persistence = read("nvmlDeviceGetPersistenceMode", handle)
    d["persistence_mode"] = bool(persistence) if persistence is not None else None
    d["compute_mode"] = COMPUTE_MODES.get(read("nvmlDeviceGetComputeMode", handle))
    mig = read("nvmlDeviceGetMigMode", handle)
    d["mig_mode"] = bool(mig[0]) if mig is not None else None
    accounting = read("nvmlDeviceGetAccountingMode", handle)
    d["accounting_mode"] = bool(accounting) if accounting is not None else None
    d["pcie_gen"] = read("nvmlDeviceGetCurrPcieLinkGeneration", handle)
    d["pcie_width"] = read("nvmlDeviceGetCurrPcieLinkWidth", handle)

    d["processes"] = _processes(reader, handle)
    d["accounting"] = _accounting(reader, handle, since, now) if d["accounting_mode"] else []
    d["mig_devices"] = _mig_devices(reader, handle) if d["mig_mode"] else []
    d["errors"] = reader.errors
    return d


def throttle_names(mask):
    names = [name for bit, name in THROTTLE_REASONS if mask & bit]
    unknown = mask & ~sum(bit for bit, _ in THROTTLE_REASONS)
    if unknown:
        names.append(f"unknown_0x{unknown:x}")
    return names


def _value(value, value_type):
    """A number from an nvmlValue_t union, by its nvmlValueType_t."""
    try:
        return getattr(value, _VALUE_ATTRS[value_type])
    except (IndexError, TypeError, AttributeError):
        return None


def _average_utilization(reader, handle):
    """Mean of NVML's buffered GPU utilization samples (about the last 15 s) and their count."""
    result = reader.read("nvmlDeviceGetSamples", handle, UTILIZATION_SAMPLES, 0)
    if not result:
        return None, 0
    value_type, samples = result
    values = [v for v in (_value(s.sampleValue, value_type) for s in samples) if v is not None]
    if not values:
        return None, 0
    return round(sum(values) / float(len(values)), 2), len(values)


def _memory(reader, handle):
    """(total, used, reserved) bytes; reserved (driver/firmware) needs the v2 call, null without it."""
    v2 = getattr(reader.nvml, "nvmlMemory_v2", None)
    mem = reader.read("nvmlDeviceGetMemoryInfo", handle, v2) if v2 is not None else None
    if mem is not None:
        return mem.total, mem.used, mem.reserved
    mem = reader.read("nvmlDeviceGetMemoryInfo", handle)
    if mem is None:
        return None, None, None
    return mem.total, mem.used, None


def _field_value(reader, handle, field_id):
    values = reader.read("nvmlDeviceGetFieldValues", handle, [field_id])
    if not values or values[0].nvmlReturn != 0:
        return None
    return _value(values[0].value, values[0].valueType)


def _retired_pages(reader, handle):
    """Pages retired for ECC errors (pre-Ampere; newer GPUs remap rows and say not supported)."""
    counts = [reader.read("nvmlDeviceGetRetiredPages", handle, cause) for cause in (0, 1)]
    if all(c is None for c in counts):
        return None
    return sum(len(c) for c in counts if c is not None)


def _id(value):
    return None if value is None or value in NOT_AVAILABLE else int(value)


def _pct(value):
    """A utilization in percent; null for NVML_VALUE_NOT_AVAILABLE or anything else that is not one."""
    return int(value) if value is not None and 0 <= value <= 100 else None


def _epoch_us(value):
    """Seconds since the epoch from NVML's microseconds; null for 0, "not available" and any time the
    warehouse cannot take (before 1970 or after 2200): a bogus clock costs only that one time."""
    if not value or value in NOT_AVAILABLE:
        return None
    seconds = value / 1e6
    return seconds if 0 <= seconds < _LAST_TIME else None


def _processes(reader, handle):
    """Running compute and graphics processes; null when NVML will not list them, either of them: a list
    without the compute (or graphics) processes would pass for a GPU without any."""
    listings = []
    for kind, fns in (
        ("compute", ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetComputeRunningProcesses_v2")),
        ("graphics", ("nvmlDeviceGetGraphicsRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses_v2")),
    ):
        procs = reader.first(fns, handle)
        if procs is None:
            return None
        listings.append((kind, procs))
    merged = {}
    for kind, procs in listings:
        for p in procs:
            gi, ci = _id(getattr(p, "gpuInstanceId", None)), _id(getattr(p, "computeInstanceId", None))
            key = (p.pid, gi, ci)
            if key in merged:
                merged[key]["type"] = "compute+graphics"
                continue
            merged[key] = {  # user, command and start: name_owners, for every GPU at once
                "pid": int(p.pid), "type": kind, "gpu_mem_bytes": _id(getattr(p, "usedGpuMemory", None)),
                "user": None, "command": None, "started_at": None, "mig_gi": gi, "mig_ci": ci,
            }
    return list(merged.values())


def name_owners(devices):
    """The user, command and start of every GPU's running processes, read once for all GPUs (a process on several
    GPUs is read once), their command lines together (owners_and_commands: a process stuck in the kernel costs
    a bounded wait, not the collection)."""
    pids = sorted({p["pid"] for d in devices for p in d.get("processes") or []})
    found = owners_and_commands(pids) if pids else {}
    started = start_times(found) if found else {}  # a pid gone since is not read again
    for d in devices:
        for p in d.get("processes") or []:
            p["user"], p["command"] = found.get(p["pid"], (None, None))
            p["started_at"] = iso_z(started.get(p["pid"]))


def _accounting(reader, handle, since, now):
    """Processes the driver accounted for; those that ended before ``since`` (epoch s) are left out."""
    records = []
    for pid in reader.read("nvmlDeviceGetAccountingPids", handle) or []:
        s = reader.read("nvmlDeviceGetAccountingStats", handle, pid)
        if s is None:  # evicted from the driver's buffer meanwhile
            continue
        try:  # one record that cannot be read costs only itself
            record = _accounting_record(pid, s, since, now)
        except Exception as e:
            reader.errors.append({"call": "nvmlDeviceGetAccountingStats", "type": type(e).__name__,
                                  "message": text(str(e))[:300]})
            continue
        if record is not None:
            records.append(record)
    return records


def _accounting_record(pid, s, since, now):
    """One accounting record, or None when it ended before ``since``."""
    running = bool(s.isRunning)
    start = _epoch_us(s.startTime)  # microseconds since the epoch
    if running:  # NVML reports time 0 until the process ends
        duration = max(now - start, 0.0) if start is not None else None
    else:
        ms = _id(s.time)  # milliseconds
        duration = ms / 1000.0 if ms is not None else None
    if since is not None and not running and start is not None and duration is not None and start + duration < since:
        return None
    return {
        "pid": int(pid),
        "user": owner(pid) if running else None,  # an ended pid may be reused
        "gpu_util_pct": _pct(s.gpuUtilization),
        "mem_util_pct": _pct(s.memoryUtilization),
        "max_mem_bytes": _id(s.maxMemoryUsage),
        "started_at": iso_z(start),
        "duration_s": round(duration, 3) if duration is not None else None,
        "running": running,
    }


def _mig_devices(reader, handle):
    out = []
    for i in range(reader.read("nvmlDeviceGetMaxMigDeviceCount", handle) or 0):
        mig = reader.read("nvmlDeviceGetMigDeviceHandleByIndex", handle, i)
        if mig is None:  # empty slot
            continue
        attrs = reader.read("nvmlDeviceGetAttributes", mig)
        mem = reader.read("nvmlDeviceGetMemoryInfo", mig)
        out.append({
            "index": i,
            "uuid": text(reader.read("nvmlDeviceGetUUID", mig)),
            "gi_id": reader.read("nvmlDeviceGetGpuInstanceId", mig),
            "ci_id": reader.read("nvmlDeviceGetComputeInstanceId", mig),
            "slices": attrs.gpuInstanceSliceCount if attrs is not None else None,
            "mem_total_bytes": mem.total if mem is not None else None,
            "mem_used_bytes": mem.used if mem is not None else None,
        })
    return out
