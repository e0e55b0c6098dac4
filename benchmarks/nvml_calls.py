"""What NVML costs on this machine, call by call, as the collector calls it (needs the NVIDIA driver).

    python -m benchmarks.nvml_calls [--sessions 10]

Each session, in this one process: nvmlInit; the collector's reading of the driver facts and of every GPU
(collectors.gpu_devices), twice: the first pass pays what the driver does on a query's first use after
nvmlInit, the second what the same reads cost again; the quantities nvmlDeviceGetFieldValues can give
(energy, power, ECC, remapped rows, memory temperature) in one call, against the energy counter alone;
then nvmlShutdown. Wall and CPU time of each call (NVML's calls are synchronous: this process's CPU);
medians over the sessions, the first session's nvmlInit apart (it loads libnvidia-ml, as every
collection's new process does). Results in benchmarks/out/nvml-calls.json; docs/benchmarks.md has the
H200's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import write_result  # noqa: E402
from collectors import gpu_devices, gpus  # noqa: E402 - the collector's own reading

FIELDS = ("NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "NVML_FI_DEV_POWER_AVERAGE", "NVML_FI_DEV_POWER_INSTANT",
          "NVML_FI_DEV_ECC_CURRENT", "NVML_FI_DEV_ECC_SBE_VOL_TOTAL", "NVML_FI_DEV_ECC_DBE_VOL_TOTAL",
          "NVML_FI_DEV_ECC_SBE_AGG_TOTAL", "NVML_FI_DEV_ECC_DBE_AGG_TOTAL", "NVML_FI_DEV_REMAPPED_COR",
          "NVML_FI_DEV_REMAPPED_UNC", "NVML_FI_DEV_REMAPPED_PENDING", "NVML_FI_DEV_REMAPPED_FAILURE",
          "NVML_FI_DEV_MEMORY_TEMP")


def timed(fn, *args) -> tuple[float, float]:
    """(wall s, CPU s) of fn(*args); an NVML error counts as a call too (the collector makes it)."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        fn(*args)
    except Exception:  # NotSupported and the like: timed all the same
        pass
    return time.perf_counter() - wall, time.process_time() - cpu


class Timed:
    """The pynvml module, with every nvml* function call's wall and CPU time added to ``calls``."""

    def __init__(self, nvml):
        self._nvml = nvml
        self.calls = defaultdict(lambda: [0.0, 0.0, 0])  # name -> [wall s, CPU s, count]

    def __getattr__(self, name):
        value = getattr(self._nvml, name)
        if not (name.startswith("nvml") and callable(value)):
            return value

        def call(*args):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return value(*args)
            finally:
                total = self.calls[name]
                total[0] += time.perf_counter() - wall
                total[1] += time.process_time() - cpu
                total[2] += 1

        return call


def read_all(nvml) -> dict:
    """The collector's reads of one collection: {call: [wall s, CPU s, count]}."""
    t = Timed(nvml)
    gpu_devices.facts(t)
    for index in range(nvml.nvmlDeviceGetCount()):
        gpu_devices.device(t, index, None, time.time())
    return dict(t.calls)


def session(nvml) -> dict:
    out = {"init": timed(nvml.nvmlInit)}
    out["first"] = read_all(nvml)
    out["again"] = read_all(nvml)
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    ids = [getattr(nvml, name) for name in FIELDS if hasattr(nvml, name)]
    out["field_values_batch"] = timed(nvml.nvmlDeviceGetFieldValues, handle, ids)
    out["field_values_energy"] = timed(nvml.nvmlDeviceGetFieldValues, handle, ids[:1])
    out["energy_call"] = timed(nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
    out["fields"] = len(ids)
    out["shutdown"] = timed(nvml.nvmlShutdown)
    return out


def median(values) -> float:
    return statistics.median(values) if values else 0.0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.nvml_calls", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=10)
    args = p.parse_args(argv)
    nvml = gpus.load_pynvml() if gpus.driver_present() else None
    if nvml is None:
        sys.exit("no NVIDIA driver (or no pynvml) here: nothing to measure")
    sessions = [session(nvml) for _ in range(max(2, args.sessions))]
    names = sorted({name for s in sessions for name in s["first"]})
    out = {"sessions": len(sessions), "gpus": sessions[0]["first"]["nvmlDeviceGetHandleByIndex"][2],
           "init_new_process": list(sessions[0]["init"]), "calls": {}}
    for key in ("init", "shutdown", "field_values_batch", "field_values_energy", "energy_call"):
        out[key] = [median(s[key][i] for s in sessions[1:]) for i in (0, 1)]
    out["fields"] = sessions[0]["fields"]
    for name in names:
        out["calls"][name] = {
            "count": sessions[0]["first"][name][2],
            **{f"{phase}_{unit}": median(s[phase].get(name, [0.0, 0.0])[i] for s in sessions)
               for phase in ("first", "again") for i, unit in enumerate(("wall_s", "cpu_s"))}}
    for phase in ("first", "again"):
        out[f"{phase}_total_cpu_s"] = median(sum(v[1] for v in s[phase].values()) for s in sessions)
    ms = 1000
    print(f"{out['gpus']} GPU(s), {out['sessions']} sessions; nvmlInit {out['init_new_process'][1] * ms:.1f} ms CPU in "
          f"a new process, {out['init'][1] * ms:.1f} ms again; nvmlShutdown {out['shutdown'][1] * ms:.1f} ms")
    print(f"the collector's reads: {out['first_total_cpu_s'] * ms:.1f} ms CPU after nvmlInit, "
          f"{out['again_total_cpu_s'] * ms:.1f} ms again")
    print(f"{'call':44} {'n':>3} {'first ms CPU':>13} {'wall':>7} {'again ms CPU':>13} {'wall':>7}")
    for name, c in sorted(out["calls"].items(), key=lambda kv: -kv[1]["first_cpu_s"]):
        print(f"{name:44} {c['count']:>3} {c['first_cpu_s'] * ms:>13.3f} {c['first_wall_s'] * ms:>7.3f} "
              f"{c['again_cpu_s'] * ms:>13.3f} {c['again_wall_s'] * ms:>7.3f}")
    print(f"nvmlDeviceGetFieldValues, {out['fields']} fields: {out['field_values_batch'][1] * ms:.3f} ms CPU; the "
          f"energy field alone {out['field_values_energy'][1] * ms:.3f} ms; nvmlDeviceGetTotalEnergyConsumption "
          f"{out['energy_call'][1] * ms:.3f} ms")
    write_result("nvml-calls.json", out)
    return out


if __name__ == "__main__":
    main()
