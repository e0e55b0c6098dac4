"""fleetscope collectors: build one host document (docs/document.md) from /proc, /sys and NVML.

Runs on the hosts with python3 >= 3.8 and the standard library (psutil and pynvml when present); ships
as ``ansible.module_utils.fleetscope_collectors``, hence relative imports only and no subpackages.
Each subsystem module exposes ``collect(ctx) -> dict``; ``collect()`` below runs them one by one and
turns a failure into an ``errors`` entry, so one broken subsystem never hides the others.
"""

import time

from . import cpu, disks, gpus, host, load, memory, network, processes
from ._util import iso_z, text

__version__ = "0.1.0"
SCHEMA_VERSION = 1

# name -> module, in document order; the runner looks ``collect`` up at call time
SUBSYSTEMS = {
    "host": host, "cpu": cpu, "load": load, "memory": memory, "disks": disks,
    "network": network, "processes": processes, "gpus": gpus,
}
RUN_FIRST = ("gpus",)  # host reuses the NVML facts gpus read, instead of starting NVML twice


def collect(top_n=15, accounting_since=None, only=None):
    """The host document. Never raises: failures become ``errors`` entries and null subsystems.

    top_n: processes to report, the top N by CPU time plus the top N by memory.
    accounting_since: ISO 8601 time; NVML accounting records that ended before it are left out.
    only: subsystem names (list or comma-separated str) to collect; the others are left out.
    """
    started, clock = time.time(), time.monotonic()
    errors = []
    names = _selected(only, errors)
    ctx = {"top_n": top_n, "accounting_since": None}
    if accounting_since:
        try:
            ctx["accounting_since"] = parse_time(accounting_since)
        except (TypeError, ValueError, AttributeError) as e:
            errors.append(_error("accounting_since", e))
    results = {}
    for name in sorted(names, key=lambda n: n not in RUN_FIRST):
        try:
            results[name] = SUBSYSTEMS[name].collect(ctx)
        except Exception as e:
            results[name] = None
            errors.append(_error(name, e))
    document = {
        "schema_version": SCHEMA_VERSION,
        "collector_version": __version__,
        "time": {"collected_at": iso_z(started, micro=True), "duration_s": round(time.monotonic() - clock, 6)},
    }
    for name in SUBSYSTEMS:
        if name in results:
            document[name] = results[name]
    document["errors"] = errors
    return document


def parse_time(value):
    """POSIX seconds from ISO 8601 ("...Z", an offset, or naive meaning UTC)."""
    import datetime  # only here: most runs need no date parsing, and the import costs ~4 ms of CPU

    t = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.timestamp()


def _selected(only, errors):
    if only is None:
        return list(SUBSYSTEMS)
    if isinstance(only, str):
        only = only.split(",")
    names = []
    for name in (str(n).strip() for n in only):
        if name in SUBSYSTEMS:
            names.append(name)
        elif name:
            errors.append({"subsystem": name, "type": "ValueError",
                           "message": f"unknown subsystem; known: {', '.join(SUBSYSTEMS)}"})
    return names


def _error(subsystem, exc):
    return {"subsystem": subsystem, "type": type(exc).__name__, "message": text(str(exc))[:500]}
