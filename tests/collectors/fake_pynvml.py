"""A fake pynvml shaped like a real host with two H100 SXM GPUs (driver 580), for tests only.

Constants, error classes and the ctypes structures it returns come from the installed real pynvml, so
the collector sees exactly the types NVML gives it. The host:

- GPU 0: MIG mode on with two 3g.40gb instances, one process inside GI 1 / CI 0; like a real MIG
  parent, it reports no utilization (NotSupported).
- GPU 1: MIG off, accounting mode on, one running compute process (``compute_pid``), a utilization
  sample buffer, sw_power_cap throttling; accounting holds two ended processes and the running one.
- Both: no fan (NotSupported, a datacenter card), no page retirement (rows are remapped instead).
- Both: settable as on a real H100 SXM: compute mode (default at first) and power limit (700 W at first,
  200-700 W allowed, in milliwatts as NVML takes it). Setting needs root, as with NVML: without it the
  setters raise NVML_ERROR_NO_PERMISSION; a limit outside the constraints or an unknown compute mode
  raises NVML_ERROR_INVALID_ARGUMENT.

``make(...)`` builds a fresh module; ``fail`` maps an NVML function name to the exception it raises.
What the setters change lives in the module (``host.settings``), or, with ``state_file`` (the admin tests
pass it through ``$FLEETSCOPE_FAKE_NVML_STATE``), in a JSON file that every later process sees:
``{"privileged": bool or null, "gpus": {"0": {"compute_mode": 0, "power_limit_mw": 700000}, ...}}``.
``privileged`` null (or absent) means "as NVML would": allowed only to root (euid 0).
"""

import json
import os
import time
import types

import pynvml as real

GIB = 1024**3
MIB = 1024**2
DRIVER = "580.65.06"
CUDA = 13000
NVML_VERSION = "13.580.65.06"
NAME = "NVIDIA H100 80GB HBM3"
NOT_AVAILABLE_ULL = real.NVML_VALUE_NOT_AVAILABLE_ulonglong.value
MISSING_PID = 4_194_400  # above the kernel's PID_MAX_LIMIT: a process that is gone
POWER_LIMIT_CONSTRAINTS_MW = (200_000, 700_000)  # an H100 SXM
DEFAULT_POWER_LIMIT_MW = 700_000
STATE_ENV = "FLEETSCOPE_FAKE_NVML_STATE"
COMPUTE_MODES = (real.NVML_COMPUTEMODE_DEFAULT, real.NVML_COMPUTEMODE_PROHIBITED,
                 real.NVML_COMPUTEMODE_EXCLUSIVE_PROCESS)  # EXCLUSIVE_THREAD: support removed


def default_state(privileged=None):
    """The settings a freshly booted host has."""
    return {"privileged": privileged, "gpus": {
        str(i): {"compute_mode": real.NVML_COMPUTEMODE_DEFAULT, "power_limit_mw": DEFAULT_POWER_LIMIT_MW}
        for i in (0, 1)}}


def read_state(path):
    """The state in ``path`` (a fresh host's when the file is not there yet)."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default_state()


def write_state(path, state):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _not_supported():
    return real.NVMLError(real.NVML_ERROR_NOT_SUPPORTED)


class _Handle:
    def __init__(self, index, mig=None):
        self.index, self.mig = index, mig


class FakeH100Host:
    def __init__(self, compute_pid, now, init_error, state_file=None):
        self.compute_pid, self.now, self.init_error = compute_pid, now, init_error
        self.state_file = state_file
        self.settings = default_state()
        self.inits = self.shutdowns = 0
        self.fail = {}
        self.accounting = {
            # pid: (gpu util %, mem util %, max memory bytes or None (not available), start, time ms, running)
            31001: (80, 10, None, now - 3 * 3600, 600_000, 0),  # ended 2 h 50 min ago
            31002: (95, 40, 30 * GIB, now - 600, 300_000, 0),  # ended 5 min ago
            compute_pid: (99, 45, 24 * GIB, now - 120, 0, 1),  # still running
        }

    # -- library and system ------------------------------------------------------------------------
    def nvmlInit(self):
        if self.init_error is not None:
            raise real.NVMLError(self.init_error)
        self.inits += 1

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self):
        return DRIVER

    def nvmlSystemGetCudaDriverVersion(self):
        return CUDA

    def nvmlSystemGetNVMLVersion(self):
        return NVML_VERSION

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        if index not in (0, 1):
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(index)

    # -- what the setters change (in the module, or in the state file) ----------------------------
    def _state(self):
        return self.settings if self.state_file is None else read_state(self.state_file)

    def _setting(self, h, key):
        if h.mig is not None:  # settings belong to the whole GPU
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        return self._state()["gpus"][str(h.index)][key]

    def _set(self, h, key, value):
        if h.mig is not None:
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        state = self._state()
        privileged = state.get("privileged")
        if not (os.geteuid() == 0 if privileged is None else privileged):
            raise real.NVMLError(real.NVML_ERROR_NO_PERMISSION)
        state["gpus"][str(h.index)][key] = value
        if self.state_file is not None:
            write_state(self.state_file, state)

    # -- identity ----------------------------------------------------------------------------------
    def nvmlDeviceGetName(self, h):
        return NAME

    def nvmlDeviceGetUUID(self, h):
        if h.mig is not None:
            return f"MIG-5d2c4a3b-0f1e-5a6b-9c8d-{h.mig:012d}"
        return f"GPU-3f9a1c2e-7b4d-4e8f-a1b2-c3d4e5f6a7b{h.index}"

    def nvmlDeviceGetSerial(self, h):
        return f"165242305123{h.index}"

    def nvmlDeviceGetPciInfo(self, h):
        info = real.nvmlPciInfo_t()
        info.busId = b"00000000:%02X:00.0" % (0x18 + 0x1C * h.index)  # a char array: bytes, as for real
        return info

    # -- utilization and memory --------------------------------------------------------------------
    def nvmlDeviceGetUtilizationRates(self, h):
        if h.index == 0:  # a MIG parent reports no utilization
            raise _not_supported()
        util = real.c_nvmlUtilization_t()
        util.gpu, util.memory = 97, 41
        return util

    def nvmlDeviceGetSamples(self, h, sampling_type, timestamp):
        assert sampling_type == real.NVML_GPU_UTILIZATION_SAMPLES
        if h.index == 0:
            raise _not_supported()
        samples = (real.c_nvmlSample_t * 70)()
        for i, sample in enumerate(samples):  # ~14 s at 5 Hz
            sample.timeStamp = int((self.now - 14 + i * 0.2) * 1e6)
            sample.sampleValue.uiVal = 90 + i % 11  # 90..100
        return real.NVML_VALUE_TYPE_UNSIGNED_INT, samples[0:70]

    def nvmlDeviceGetMemoryInfo(self, h, version=None):
        if h.mig is not None:
            mem = real.c_nvmlMemory_t()
            mem.total, mem.used = 40_448 * MIB, (5_120 if h.mig == 0 else 13) * MIB
            mem.free = mem.total - mem.used
            return mem
        assert version in (None, real.nvmlMemory_v2)
        mem = real.c_nvmlMemory_v2_t() if version else real.c_nvmlMemory_t()
        mem.total = 85_520_809_984  # 81559 MiB
        mem.used = (26 * GIB if h.index == 1 else 5_133 * MIB)
        if version:
            mem.reserved = 540 * MIB
        mem.free = mem.total - mem.used - (mem.reserved if version else 0)
        return mem

    # -- sensors, power, clocks --------------------------------------------------------------------
    def nvmlDeviceGetTemperature(self, h, sensor):
        assert sensor == real.NVML_TEMPERATURE_GPU
        return (34, 61)[h.index]

    def nvmlDeviceGetFieldValues(self, h, field_ids):
        values = (real.c_nvmlFieldValue_t * len(field_ids))()
        for v, field_id in zip(values, field_ids):
            v.fieldId = field_id
            if field_id == real.NVML_FI_DEV_MEMORY_TEMP:
                v.valueType, v.nvmlReturn = real.NVML_VALUE_TYPE_UNSIGNED_INT, real.NVML_SUCCESS
                v.value.uiVal = (41, 70)[h.index]
            else:
                v.nvmlReturn = real.NVML_ERROR_NOT_SUPPORTED
        return values

    def nvmlDeviceGetPowerUsage(self, h):
        return (71_042, 412_345)[h.index]  # mW

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return self._setting(h, "power_limit_mw")

    def nvmlDeviceGetPowerManagementLimit(self, h):
        return self._setting(h, "power_limit_mw")

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h):
        return DEFAULT_POWER_LIMIT_MW

    def nvmlDeviceGetPowerManagementLimitConstraints(self, h):
        return list(POWER_LIMIT_CONSTRAINTS_MW)  # [min, max] in mW, a list as pynvml returns it

    def nvmlDeviceSetPowerManagementLimit(self, h, limit):
        limit = real.c_uint(limit).value  # as pynvml passes it: a float is a TypeError, -1 wraps round
        low, high = POWER_LIMIT_CONSTRAINTS_MW
        if not low <= limit <= high:
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        self._set(h, "power_limit_mw", limit)

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return (48_221_113_094, 123_456_789_012)[h.index]  # mJ since the driver loaded

    def nvmlDeviceGetFanSpeed(self, h):
        raise _not_supported()

    def nvmlDeviceGetClockInfo(self, h, clock):
        return {real.NVML_CLOCK_SM: (345, 1980)[h.index], real.NVML_CLOCK_MEM: 2619}[clock]

    def nvmlDeviceGetMaxClockInfo(self, h, clock):
        return {real.NVML_CLOCK_SM: 1980, real.NVML_CLOCK_MEM: 2619}[clock]

    def nvmlDeviceGetPerformanceState(self, h):
        return 0

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return (real.nvmlClocksEventReasonGpuIdle, real.nvmlClocksEventReasonSwPowerCap)[h.index]

    # -- reliability -------------------------------------------------------------------------------
    def nvmlDeviceGetEccMode(self, h):
        return [real.NVML_FEATURE_ENABLED, real.NVML_FEATURE_ENABLED]

    def nvmlDeviceGetTotalEccErrors(self, h, error_type, counter_type):
        if error_type == real.NVML_MEMORY_ERROR_TYPE_CORRECTED and counter_type == real.NVML_AGGREGATE_ECC:
            return 3
        return 0

    def nvmlDeviceGetRemappedRows(self, h):
        return (0, 0, 0, 0)

    def nvmlDeviceGetRetiredPages(self, h, cause):
        raise _not_supported()  # Hopper remaps rows instead

    # -- modes and link ----------------------------------------------------------------------------
    def nvmlDeviceGetPersistenceMode(self, h):
        return real.NVML_FEATURE_ENABLED

    def nvmlDeviceGetComputeMode(self, h):
        return self._setting(h, "compute_mode")

    def nvmlDeviceSetComputeMode(self, h, mode):
        if mode not in COMPUTE_MODES:
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        self._set(h, "compute_mode", mode)

    def nvmlDeviceGetMigMode(self, h):
        mode = real.NVML_DEVICE_MIG_ENABLE if h.index == 0 else real.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetAccountingMode(self, h):
        return real.NVML_FEATURE_ENABLED if h.index == 1 else real.NVML_FEATURE_DISABLED

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h):
        return 5

    def nvmlDeviceGetCurrPcieLinkWidth(self, h):
        return 16

    # -- processes ---------------------------------------------------------------------------------
    def _process(self, pid, used, gi=0xFFFFFFFF, ci=0xFFFFFFFF):
        return real.nvmlFriendlyObject(
            {"pid": pid, "usedGpuMemory": used, "gpuInstanceId": gi, "computeInstanceId": ci})

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        if h.index == 0:
            return [self._process(MISSING_PID, 5_000 * MIB, gi=1, ci=0)]
        # the second entry: usedGpuMemory not available (pynvml turns it into None)
        return [self._process(self.compute_pid, 24 * GIB), self._process(MISSING_PID + 1, None)]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        return []

    def nvmlDeviceGetAccountingPids(self, h):
        if h.index != 1:
            raise _not_supported()
        return list(self.accounting)

    def nvmlDeviceGetAccountingStats(self, h, pid):
        if pid not in self.accounting:
            raise real.NVMLError(real.NVML_ERROR_NOT_FOUND)
        gpu, mem, max_mem, start, ms, running = self.accounting[pid]
        stats = real.c_nvmlAccountingStats_t()
        stats.gpuUtilization, stats.memoryUtilization = gpu, mem
        stats.maxMemoryUsage = NOT_AVAILABLE_ULL if max_mem is None else max_mem
        stats.time, stats.startTime, stats.isRunning = ms, int(start * 1e6), running
        return stats

    # -- MIG ---------------------------------------------------------------------------------------
    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, index):
        if h.index != 0 or index > 1:
            raise real.NVMLError(real.NVML_ERROR_NOT_FOUND)
        return _Handle(h.index, mig=index)

    def nvmlDeviceGetGpuInstanceId(self, h):
        return (1, 2)[h.mig]

    def nvmlDeviceGetComputeInstanceId(self, h):
        return 0

    def nvmlDeviceGetAttributes(self, h):
        attrs = real.c_nvmlDeviceAttributes()
        attrs.gpuInstanceSliceCount, attrs.computeInstanceSliceCount = 3, 3
        attrs.multiprocessorCount, attrs.memorySizeMB = 60, 40_448
        return attrs


def make(compute_pid, init_error=None, now=None, state_file=None):
    """A module that passes for pynvml. ``init_error``: an NVML_ERROR_* code nvmlInit raises;
    ``state_file``: where the settings live (default: in the module only)."""
    host = FakeH100Host(compute_pid, time.time() if now is None else now, init_error, state_file)
    module = types.ModuleType("pynvml")
    for name in dir(real):  # constants, error classes, structures: the real ones
        if not callable(getattr(real, name)) or isinstance(getattr(real, name), type):
            setattr(module, name, getattr(real, name))
    for name in dir(FakeH100Host):
        if name.startswith("nvml"):
            setattr(module, name, _failable(host, name))
    module.host = host
    return module


def _failable(host, name):
    method = getattr(host, name)

    def call(*args, **kwargs):
        if name in host.fail:
            raise host.fail[name]
        return method(*args, **kwargs)

    call.__name__ = name
    return call
