"""Host: slow-changing inventory (names, OS, kernel, CPU, memory, boot time, NVIDIA driver and GPUs).

Standard library and /proc, /sys only. The NVIDIA facts come from the ``gpus`` subsystem of the same
run (ctx["nvidia"]), so NVML starts once; a run without ``gpus`` reads them itself.
"""

import os

from . import gpus
from ._util import PROC, boot_time, error_entry, iso_z, python_version, read_text
from .memory import meminfo

SYS_CPU = "/sys/devices/system/cpu"
# /proc/cpuinfo on Arm names no model; "CPU part" does (as lscpu's table, for the server cores)
ARM_PARTS = {
    "0xd0c": "Neoverse-N1", "0xd40": "Neoverse-V1", "0xd49": "Neoverse-N2", "0xd4f": "Neoverse-V2",
    "0xd8e": "Neoverse-N3", "0xd84": "Neoverse-V3",
}


def collect(ctx):
    uname = os.uname()
    errors = ctx.setdefault("errors", [])

    def part(name, read):
        """One fact: a failure costs that fact (null, and an errors entry "host.<name>"), not the others."""
        try:
            return read()
        except Exception as e:
            errors.append(error_entry(f"host.{name}", e))
            return None

    nvidia = ctx.get("nvidia")
    if nvidia is None:
        nvidia = part("nvidia", lambda: gpus.nvidia_facts(exiting=ctx.get("exiting", False))) or gpus.NO_FACTS

    return {
        "hostname": hostname(),
        "fqdn": fqdn(),
        "os": part("os", os_name),
        "kernel": uname.release,
        "arch": uname.machine,
        "cpu_model": part("cpu_model", cpu_model),
        "cpu_logical": os.cpu_count(),
        "cpu_physical": part("cpu_physical", cpu_physical),
        "mem_total_bytes": part("mem_total_bytes", lambda: meminfo()["MemTotal"]),
        "boot_time": part("boot_time", lambda: iso_z(boot_time())),
        "python": python_version(),
        "nvidia_driver": nvidia["nvidia_driver"],
        "cuda_version": nvidia["cuda_version"],
        "nvml_version": nvidia["nvml_version"],
        "gpu_models": list(nvidia["gpu_models"]),
    }


def os_name():
    """PRETTY_NAME from os-release, else the kernel's name."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            content = read_text(path)
        except OSError:
            continue
        for line in content.splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip("\"'")
    import platform  # only here: a rare fallback, and importing platform (and re) costs ~10 ms of CPU

    return platform.system() or None


def cpu_model():
    fields = {}
    with open(PROC + "/cpuinfo", encoding="utf-8", errors="replace") as f:
        for line in f:  # streamed: on large x86 hosts the first block suffices, and the rest is slow
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
            elif fields.get("model name"):
                break
    for key in ("model name", "Model Name", "cpu model", "Hardware", "Processor", "cpu"):
        if fields.get(key):
            return fields[key]
    part = fields.get("CPU part")
    if part:
        return ARM_PARTS.get(part.lower(), f"Arm CPU part {part}")
    import platform

    return platform.processor() or None


def cpu_physical():
    """Physical cores: distinct (package, core) pairs in sysfs; None when sysfs does not say."""
    cores = set()
    try:
        names = os.listdir(SYS_CPU)
    except OSError:
        names = []
    for name in names:  # cpu[0-9]*, as glob would pick them (glob imports re: ~10 ms of CPU)
        if not (name.startswith("cpu") and "0" <= name[3:4] <= "9"):
            continue
        topology = f"{SYS_CPU}/{name}/topology"
        try:
            package = read_text(topology + "/physical_package_id").strip()
            core = read_text(topology + "/core_id").strip()
        except OSError:
            continue
        cores.add((package, core))
    return len(cores) or None


def hostname():
    """socket.gethostname(), from socket's C module: importing socket.py (enum, selectors) costs ~10 ms of CPU."""
    import _socket

    return _socket.gethostname()


def fqdn():
    """socket.getfqdn() for this host.

    speed: socket.getfqdn() hands the name to gethostbyaddr() as str, which loads the idna codec (stringprep,
    re: ~10 ms of CPU); an ASCII name, which that codec passes through unchanged, goes as bytes instead.
    """
    import _socket

    name = _socket.gethostname()
    if not (name.isascii() and all(0 < len(label) < 64 for label in name.split("."))):
        import socket  # a name the idna codec would change or refuse: the real thing

        return socket.getfqdn()
    try:
        try:
            canonical, aliases, _ = _socket.gethostbyaddr(name.encode("ascii"))
        except TypeError:  # PyPy's _socket takes str only
            canonical, aliases, _ = _socket.gethostbyaddr(name)
    except OSError:
        return name
    for alias in [canonical, *aliases]:  # the first with a dot, as getfqdn picks
        if "." in alias:
            return alias
    return canonical
