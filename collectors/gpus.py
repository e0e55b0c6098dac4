"""GPUs: one entry per NVIDIA GPU, read through NVML (pynvml), with its processes, MIG devices and
accounting records.

No pynvml, no driver, or an NVML that will not start is not an error: ``available`` is false and
``reason`` says why. Every field is read on its own (``gpu_devices.Reader.read``): a field the GPU does not
support is null, any other failure is null too and is recorded in the device's ``errors``. The reading
itself is in gpu_devices.py, imported only once the driver and pynvml are there.
"""

import os
import time

from ._util import note_stuck, stuck_reads, text

# bit -> name of nvmlDeviceGetCurrentClocksEventReasons (formerly ...ClocksThrottleReasons)
THROTTLE_REASONS = (
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
    (0x200, "board_limit"),
    (0x400, "reliability"),
)
COMPUTE_MODES = {0: "default", 1: "exclusive_thread", 2: "prohibited", 3: "exclusive_process"}
# NVML errors that mean "this GPU or driver cannot tell": the value is null and nothing is recorded
QUIET_ERRORS = (
    "NVMLError_NotSupported", "NVMLError_NoPermission", "NVMLError_FunctionNotFound",
    "NVMLError_NotFound", "NVMLError_NoData", "NVMLLibraryMismatchError",
)
NOT_AVAILABLE = (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)  # NVML_VALUE_NOT_AVAILABLE as uint / ulonglong
PSTATE_UNKNOWN = 32
UTILIZATION_SAMPLES = 1  # NVML_GPU_UTILIZATION_SAMPLES
MEMORY_TEMP_FIELD = 82  # NVML_FI_DEV_MEMORY_TEMP
NO_FACTS = {"nvidia_driver": None, "cuda_version": None, "nvml_version": None, "gpu_models": []}

DEVICE_FIELDS = (
    "index", "uuid", "name", "serial", "bus_id",
    "utilization_gpu_pct", "utilization_mem_pct", "utilization_gpu_avg_pct", "utilization_samples",
    "mem_total_bytes", "mem_used_bytes", "mem_reserved_bytes", "temperature_c", "temperature_mem_c",
    "power_w", "power_limit_w", "energy_mj", "fan_pct",
    "clock_sm_mhz", "clock_mem_mhz", "clock_sm_max_mhz", "pstate", "throttle_reasons", "throttle_mask",
    "ecc_mode", "ecc_volatile_corrected", "ecc_volatile_uncorrected",
    "ecc_aggregate_corrected", "ecc_aggregate_uncorrected",
    "remapped_rows_correctable", "remapped_rows_uncorrectable", "remapped_rows_pending",
    "remapped_rows_failure", "retired_pages",
    "persistence_mode", "compute_mode", "mig_mode", "accounting_mode", "pcie_gen", "pcie_width",
    "processes", "accounting", "mig_devices", "errors",
)


NO_DRIVER = "no NVIDIA driver loaded (no /proc/driver/nvidia/version)"
DRIVER_MARKERS = ("/proc/driver/nvidia/version", "/dev/nvidiactl")


def driver_present():
    """Cheap check before importing pynvml: a 330 KB module compiled on every run (AnsiballZ ships no .pyc)
    costs ~100 ms of CPU, which a host without the NVIDIA kernel driver need not pay."""
    return any(os.path.exists(p) for p in DRIVER_MARKERS)


def load_pynvml():
    """The pynvml shipped beside this package (staged by fleetscope), else the host's own, else None."""
    try:
        from . import pynvml_shipped as pynvml
    except Exception:  # not staged, or it cannot load on this python: try the host's own
        try:
            import pynvml
        except Exception:
            return None
    return pynvml


def collect(ctx):
    """The ``gpus`` object; also leaves the driver facts in ctx["nvidia"] for the host subsystem."""
    facts = dict(NO_FACTS)
    ctx["nvidia"] = facts
    if not driver_present():
        return _unavailable(NO_DRIVER)
    nvml = load_pynvml()
    if nvml is None:
        return _unavailable("pynvml not available (nvidia-ml-py neither shipped nor installed)")
    reason = _init(nvml)
    if reason is not None:
        return _unavailable(reason)
    try:
        from . import gpu_devices  # speed: compiled only here, on hosts with the driver

        facts.update(gpu_devices.facts(nvml))
        since, now = ctx.get("accounting_since"), time.time()
        devices = [gpu_devices.device(nvml, i, since, now) for i in range(nvml.nvmlDeviceGetCount())]
        stuck = len(stuck_reads)
        gpu_devices.name_owners(devices)
        note_stuck(ctx, "gpus.command", stuck)
        facts["gpu_models"] = sorted({d["name"] for d in devices if d["name"]})
        return {"available": True, "reason": None, "devices": devices}
    finally:
        if not ctx.get("exiting"):
            _shutdown(nvml)


def nvidia_facts(exiting=False):
    """Driver, CUDA and NVML versions and GPU models, for a run that does not collect ``gpus``."""
    nvml = load_pynvml() if driver_present() else None
    if nvml is None or _init(nvml) is not None:
        return dict(NO_FACTS)
    try:
        from . import gpu_devices

        facts = gpu_devices.facts(nvml)
        facts["gpu_models"] = gpu_devices.model_names(nvml)
        return facts
    finally:
        if not exiting:
            _shutdown(nvml)


def _unavailable(reason):
    return {"available": False, "reason": reason, "devices": []}


def _init(nvml):
    """None when NVML started, else why not."""
    try:
        nvml.nvmlInit()
    except Exception as e:
        name = type(e).__name__
        if name == "NVMLError_LibraryNotFound":
            return "NVML library not found (no NVIDIA driver)"
        if name == "NVMLError_DriverNotLoaded":
            return "NVIDIA driver not loaded"
        return f"NVML init failed: {name}: {text(str(e))[:200]}"
    return None


def _shutdown(nvml):
    try:
        nvml.nvmlShutdown()
    except Exception:  # nothing left to save; the document is already built
        pass
