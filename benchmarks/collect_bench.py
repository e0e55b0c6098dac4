"""Collection at fleet scale on loopback sshd hosts: fleetscope against the floor and against Ansible facts.

    python -m benchmarks.collect_bench [--sizes 8 16 32] [--repeat 3] [--other-python PATH] [--rtt-ms MS]
                                       [--only-cold | --only-host] [--python PATH] [--host-repeat N]
                                       [--subsystems]

For each fleet size N (N real sshd on 127.0.0.2 ...), median wall time of:
  floor      N parallel `ssh HOST python3 -m collectors` (same SSH options and parallelism as Ansible,
             the collector already on the host: the least any agentless collector can cost)
  setup      `ansible all -m setup` (Ansible's own fact gathering) with forks = N
  playbook   `ansible-playbook playbooks/collect.yml` with forks = N: fleetscope's collection as plain
             Ansible runs it, without ansible-runner, spool or ingest (what Ansible itself costs)
  fleetscope `fleetscope collect --no-report` with forks = N (spool and ingest included)
and the controller's CPU seconds per host for fleetscope (its whole process tree); and fleetscope on the same
hosts without ansible_python_interpreter in the inventory, its interpreters remembered from the run before
(Ansible's fact cache, which `fleetscope collect` keeps) and discovered afresh. These reuse warm SSH
connections (ControlPersist), which isolates what each tool adds. Then, cold, as cron runs it (its interval
outlasts ControlPersist): the floor and fleetscope again, each with new connections, and fleetscope without
opening its first hosts' connections while Ansible starts (collect.ssh_warmup = false). --rtt-ms routes every
SSH connection through benchmarks/delay_proxy.py, a network's round trip on loopback; --only-cold measures
only the cold runs (into benchmarks/out/collect-cold-rtt<MS>.json).

Controller CPU of the cold runs too: fleetscope's process tree against the floor's ssh clients (both without
the ControlPersist masters ssh leaves in the background, and their ProxyCommand under --rtt-ms; the
handshakes are counted: the `ssh` that opened a master did its handshake before leaving it), fitted
as fixed + per host over the sizes, and the client CPU of one new SSH connection (`ssh HOST true` without a
master), with the key exchange ssh negotiates and with curve25519-sha256 for scale: every cold run pays one
per host, and it is most of the floor's CPU.

Host cost: CPU seconds, peak RSS and wall time of the process that runs on a host for one collection (what the
fleetscope_collect action runs: `python3 -c STUB` with the bootstrap and the collector bundle on stdin), against a bare
`python3 -c pass`, and against Ansible's cheapest module (`ping`, as AnsiballZ) for scale where Ansible is installed.
On a machine with the NVIDIA driver that collection reads its GPUs, also with nvidia-ml-py's pynvml as it is
(fleetscope/shipped_pynvml.py), and nvidia-smi queries the same GPU fields for scale; elsewhere the import of
the shipped pynvml stands for a GPU host's extra.
--only-host measures only this (no sshd, no Ansible: what a GPU machine lent for it can run), --python names
the host's interpreter, --host-repeat the runs of each (31), --subsystems adds each subsystem collected alone.
With a Python of another minor version (--other-python; found in /usr/bin or pyenv by default), the same on a
host running it: with the bytecode the controller compiled for it (collect.bytecode_pythons), and compiling
the sources.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import write_result  # noqa: E402
from tests.sshd import SshdFleet  # noqa: E402 - the same loopback fleet the tests use

PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
BIN = Path(sys.executable).parent


# Runs a command and prints [status, CPU s, peak RSS KiB, wall s] of it. A child's peak RSS starts at its parent's
# at fork time (Linux carries it across exec), so the measured command is forked from this small launcher,
# not from the benchmark's own, larger process. Its output goes to /dev/null; the launcher prints last.
LAUNCHER = """
import json, os, sys, time
start = time.monotonic()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps([status, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, time.monotonic() - start]))
"""


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_measured(cmd, **kw) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process tree)."""
    cpu0, t0 = children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t0, children_cpu() - cpu0


def ssh_args(fleet: SshdFleet, host, cp_dir: Path | None, proxy: str | None = None) -> list[str]:
    """ssh's command line to ``host``, through masters under ``cp_dir`` (None: a connection of its own)."""
    control = (["-o", "ControlMaster=auto", "-o", "ControlPersist=60s", "-o", f"ControlPath={cp_dir}/%C"]
               if cp_dir else ["-o", "ControlPath=none"])
    return ["ssh", "-p", str(host.port), "-i", str(fleet.key), "-o", f"UserKnownHostsFile={fleet.known_hosts}",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", *control, *(["-o", proxy] if proxy else []),
            f"{fleet.user}@{host.address}"]


def delay_proxy(rtt_ms: float) -> str | None:
    """The ssh option that routes a connection through benchmarks/delay_proxy.py: ``rtt_ms`` of round trip."""
    if not rtt_ms:
        return None
    return f"ProxyCommand={PYTHON} {ROOT / 'benchmarks' / 'delay_proxy.py'} %h %p {rtt_ms / 2:g}"


def close_masters(cp_dir: Path) -> None:
    """End the SSH master connections under cp_dir (ControlPersist would keep them a minute)."""
    for sock in cp_dir.iterdir() if cp_dir.is_dir() else ():
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "any"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)


class Cold:
    """One ControlPath folder whose masters are ended after each run: every connection is a new SSH
    handshake, as under cron, whose 5-minute interval outlasts ControlPersist (60 s) while the folder stays
    (~/.ansible/cp; fleetscope opens its first hosts' connections there while Ansible starts, with the
    command lines of the run before: fleetscope/ssh_warmup.py)."""

    def __init__(self, root: Path):
        self.dir = root

    def __enter__(self) -> Path:
        close_masters(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)  # sockets of killed masters too
        self.dir.mkdir(parents=True)
        return self.dir

    def __exit__(self, *exc) -> None:
        close_masters(self.dir)


def floor(fleet: SshdFleet, cp_dir: Path, proxy: str | None = None) -> tuple[float, float]:
    """(wall seconds, controller CPU seconds: its ssh clients, not the ControlPersist masters they leave, whose
    handshake the clients did) of N parallel `ssh HOST python3 -m collectors`."""
    remote = f"cd {ROOT} && {PYTHON} -m collectors"

    def one(host):
        subprocess.run([*ssh_args(fleet, host, cp_dir, proxy), remote], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)

    cpu0, t0 = children_cpu(), time.perf_counter()
    with ThreadPoolExecutor(len(fleet.hosts)) as pool:
        list(pool.map(one, fleet.hosts))
    return time.perf_counter() - t0, children_cpu() - cpu0


def ssh_handshake(fleet: SshdFleet, repeat: int, proxy: str | None = None) -> dict:
    """Controller CPU of one new SSH connection (`ssh HOST true`, no master), median of ``repeat``, with the
    key exchange ssh negotiates by default and with curve25519-sha256 (no post-quantum part), for scale:
    every cold run pays one per host (the client's side of the key exchange; the server's is the host's)."""
    ssh, *rest = ssh_args(fleet, fleet.hosts[0], None, proxy)
    verbose = subprocess.run([ssh, "-v", *rest, "true"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             check=True).stderr
    found = re.search(r"kex: algorithm: (\S+)", verbose)
    out = {"kex": found.group(1) if found else None}
    for name, extra in (("default", []), ("curve25519", ["-o", "KexAlgorithms=curve25519-sha256"])):
        out[f"{name}_cpu_s"] = statistics.median(run_measured([ssh, *extra, *rest, "true"], stdin=subprocess.DEVNULL)[1]
                                              for _ in range(repeat))
    return out


def as_cron() -> dict[str, str]:
    """This environment as cron's would be for the controller's processes: without PYTHONDONTWRITEBYTECODE,
    which a shell may set (this VM's does) and cron does not. With it, every run compiles fleetscope's
    modules and the action plugin from source again (about 0.05 s of CPU under a profiler; 10 alternating
    cold runs at 8 hosts differed by less than their spread, 2026-11-28)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def linear_fit(xs, ys) -> tuple[float, float]:
    """(fixed, per x) of the least-squares line through the points."""
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def bench_size(n: int, repeat: int, work: Path, rtt_ms: float = 0, only_cold: bool = False) -> dict:
    fleet = SshdFleet(work / f"sshd{n}", count=n).start()
    try:
        inventory = work / f"inv{n}.ini"
        proxy = delay_proxy(rtt_ms)
        inventory.write_text(fleet.inventory(PYTHON) if not proxy else fleet.inventory(PYTHON).replace(
            "ansible_ssh_common_args='", f"ansible_ssh_common_args='-o \"{proxy}\" "))
        env = dict(as_cron(), ANSIBLE_SSH_CONTROL_PATH_DIR=str(work / f"cp{n}"),
                   ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
        cp = work / f"cpf{n}"
        cp.mkdir()
        config = work / f"fs{n}.toml"
        config.write_text(f"[collect]\nforks = {n}\n")
        data = work / f"data{n}"
        # the same hosts without ansible_python_interpreter (most inventories): Ansible discovers it
        discover_inventory = work / f"inv{n}d.ini"
        discover_inventory.write_text(re.sub(r" ansible_python_interpreter=\S+", "", inventory.read_text()))
        discover_data = work / f"data{n}d"
        cold_data = work / f"data{n}c"  # its own SSH command lines (ssh_warmup), recorded with the cold folder
        # and without opening the first hosts' connections while Ansible starts (collect.ssh_warmup = false)
        no_warmup_config = work / f"fs{n}nw.toml"
        no_warmup_config.write_text(f"[collect]\nforks = {n}\nssh_warmup = false\n")
        results = {"floor": [], "setup": [], "playbook": [], "fleetscope": [], "fleetscope_cpu": [],
                   "floor_cold": [], "floor_cold_cpu": [], "fleetscope_cold": [], "fleetscope_cold_cpu": [],
                   "fleetscope_cold_no_warmup": [], "discovered": [], "discovering": []}
        cold = Cold(work / f"cold{n}")
        fleetscope = [BIN / "fleetscope", "collect", "--config", str(config), "--data", str(data), "--no-report",
                      "--inventory", str(inventory)]
        from fleetscope.stage import write_bundle

        playbook_env = dict(env, FLEETSCOPE_BUNDLE=str(write_bundle(work / f"stage{n}")))
        playbook = [BIN / "ansible-playbook", "-i", str(inventory), "-f", str(n),
                    str(ROOT / "playbooks" / "collect.yml"), "-e", "collect_top_n=15", "-e", "collect_host_timeout=30"]
        floor(fleet, cp, proxy)  # warm: connections up, files in the page cache, for every contender alike
        fleetscope_cold = [*fleetscope[:5], str(cold_data), *fleetscope[6:]]
        no_warmup = [*fleetscope[:3], str(no_warmup_config), "--data", str(work / f"data{n}cn"), *fleetscope[6:]]

        def cold_run(cmd) -> tuple[float, float]:
            """(wall seconds, CPU seconds of the process tree) of ``cmd`` with every SSH connection new (Cold)."""
            with cold as cp_dir:
                return run_measured(cmd, env=dict(env, ANSIBLE_SSH_CONTROL_PATH_DIR=str(cp_dir)), cwd=ROOT)

        cold_run(fleetscope_cold)  # its command lines recorded
        cold_run(no_warmup)
        discover = [*fleetscope[:5], str(discover_data), *fleetscope[6:-1], str(discover_inventory)]
        if not only_cold:
            run_measured([BIN / "ansible", "all", "-i", str(inventory), "-m", "setup", "-f", str(n)], env=env,
                         cwd=ROOT)
            run_measured(fleetscope, env=env, cwd=ROOT)
            # fleetscope on those hosts, into its own data folder (its own fact cache)
            run_measured(discover, env=env, cwd=ROOT)  # its interpreters discovered, and remembered
        for _ in range(repeat):
            with cold as cp_dir:
                wall, cpu = floor(fleet, cp_dir, proxy)
            results["floor_cold"].append(wall)
            results["floor_cold_cpu"].append(cpu)
            wall, cpu = cold_run(fleetscope_cold)
            results["fleetscope_cold"].append(wall)
            results["fleetscope_cold_cpu"].append(cpu)
            results["fleetscope_cold_no_warmup"].append(cold_run(no_warmup)[0])
            if only_cold:
                continue
            # its masters live 60 s (ControlPersist), and at 64 hosts the rest of a repeat takes longer: open
            # them again, unmeasured, so that its warm run is warm (the Ansible contenders follow one another)
            floor(fleet, cp, proxy)
            results["floor"].append(floor(fleet, cp, proxy)[0])
            results["setup"].append(run_measured(
                [BIN / "ansible", "all", "-i", str(inventory), "-m", "setup", "-f", str(n)], env=env, cwd=ROOT)[0])
            results["playbook"].append(run_measured(playbook, env=playbook_env, cwd=ROOT)[0])
            wall, cpu = run_measured(fleetscope, env=env, cwd=ROOT)
            results["fleetscope"].append(wall)
            results["fleetscope_cpu"].append(cpu)
            # interpreters discovered: remembered from the run before (fact cache), or looked up again (as
            # every run did before the cache outlived it)
            results["discovered"].append(run_measured(discover, env=env, cwd=ROOT)[0])
            shutil.rmtree(discover_data / ".runner" / "fact_cache", ignore_errors=True)
            results["discovering"].append(run_measured(discover, env=env, cwd=ROOT)[0])
        out = {k: statistics.median(v) for k, v in results.items() if v}
        out["hosts"], out["rtt_ms"] = n, rtt_ms
        out["ratio_floor_cold"] = out["fleetscope_cold"] / out["floor_cold"]
        out["ratio_floor_cold_no_warmup"] = out["fleetscope_cold_no_warmup"] / out["floor_cold"]
        out["ratio_warmup"] = out["fleetscope_cold"] / out["fleetscope_cold_no_warmup"]
        out["ratio_cpu_floor_cold"] = out["fleetscope_cold_cpu"] / out["floor_cold_cpu"]
        out["ssh_handshake"] = ssh_handshake(fleet, max(5, repeat), proxy)
        if only_cold:
            return out
        out["ratio_floor"] = out["fleetscope"] / out["floor"]
        out["ratio_setup"] = out["fleetscope"] / out["setup"]
        out["ratio_playbook"] = out["fleetscope"] / out["playbook"]
        out["playbook_ratio_floor"] = out["playbook"] / out["floor"]
        out["controller_cpu_per_host"] = out["fleetscope_cpu"] / n
        out["ratio_discovered"] = out["discovered"] / out["fleetscope"]
        out["ratio_discovering"] = out["discovering"] / out["fleetscope"]
        return out
    finally:
        fleet.stop()


# The fields of a document's GPU entry that nvidia-smi can query (nvidia-smi --help-query-gpu).
NVIDIA_SMI_FIELDS = ("index,uuid,name,serial,pci.bus_id,utilization.gpu,utilization.memory,memory.total,memory.used,"
                     "temperature.gpu,temperature.memory,power.draw,power.limit,clocks.sm,clocks.mem,clocks.max.sm,"
                     "pstate,clocks_event_reasons.active,ecc.mode.current,ecc.errors.corrected.volatile.total,"
                     "ecc.errors.uncorrected.volatile.total,persistence_mode,compute_mode,mig.mode.current,"
                     "pcie.link.gen.current,pcie.link.width.current")


def ansiballz(work: Path, module: str) -> Path:
    """The file Ansible runs on a host for `module`: kept with ANSIBLE_KEEP_REMOTE_FILES, pipelining off."""
    remote_tmp = work / f"remote_tmp_{module}"
    inventory = work / "local.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={PYTHON}\n")
    env = dict(os.environ, ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_PIPELINING="False",
               ANSIBLE_REMOTE_TMP=str(remote_tmp), PATH=f"{BIN}:{os.environ['PATH']}")
    subprocess.run([BIN / "ansible", "localhost", "-i", str(inventory), "-m", module], env=env,
                   check=True, stdout=subprocess.DEVNULL, cwd=work)
    found = sorted(remote_tmp.rglob(f"AnsiballZ_{module}.py"))
    if not found:
        raise RuntimeError("AnsiballZ file not kept")
    return found[-1]


def other_python(ours: str = PYTHON) -> str | None:
    """A CPython of another minor version than `ours`, as a host of a mixed fleet runs: the interpreter
    itself (not a pyenv shim, whose shell script would be measured too), or None."""
    import glob

    ours = subprocess.run([ours, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    candidates = [*sorted(glob.glob("/usr/bin/python3.[0-9]*")),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3.[0-9]*")))]
    for candidate in candidates:
        minor = candidate.rsplit("python", 1)[1]
        if minor != ours and minor.replace(".", "").isdigit() and (3, 8) <= tuple(map(int, minor.split("."))):
            return candidate
    return None


def host_cost(repeat: int, work: Path, other: str | None = None, python: str = PYTHON,
              subsystems: bool = False) -> dict:
    """CPU, peak memory and wall time of what runs on a host, each the median of `repeat` interleaved runs,
    the host's interpreter being `python`; with `other`, also on a host whose Python is that one (another
    minor version: bytecode shipped for it, or none). On a host with the NVIDIA driver, "module" reads its
    GPUs; "module_unpruned" does the same with the shipped pynvml not pruned, "module_unlightened" with
    nvidia-ml-py's pynvml as it is (fleetscope.shipped_pynvml); "pynvml_import_*" import each and stop.
    With `subsystems`, also the collection of each subsystem alone ("only_<name>") and of none ("only_none":
    the bootstrap and the package), what each part of a collection costs in a new process."""
    from collectors.gpus import driver_present
    from fleetscope.stage import (
        SHIPPED_PYNVML,
        STUB,
        bundle_of,
        collector_sources,
        for_magic,
        payload,
        probe_bootstrap,
    )

    shipped_sources = collector_sources()  # read once: every payload below is built from these
    unlightened, shipped = dict(shipped_sources), SHIPPED_PYNVML
    if shipped in unlightened:  # nvidia-ml-py's pynvml as it is
        unlightened[shipped] = [False, Path(importlib.util.find_spec("pynvml").origin).read_text(encoding="utf-8")]

    def sent(name, bytecode=True, bootstrap=None, pythons=(), sources=None, only=None, prune=True):  # as the action
        path = work / name
        bundle = bundle_of(sources or shipped_sources, bytecode=bytecode, pythons=pythons, prune=prune)
        if pythons:  # what the action sends a host whose Python it knows: that Python's bytecode only
            magic = subprocess.run([pythons[0], "-c", "import importlib.util as u; print(u.MAGIC_NUMBER.hex())"],
                                   capture_output=True, text=True, check=True).stdout.strip()
            bundle = for_magic(bundle, bytes.fromhex(magic))
        path.write_bytes(payload({"top_n": 15, "timeout": 30, **({} if only is None else {"only": only})},
                                 bundle, bootstrap))
        return path

    # What a GPU host adds before NVML's own calls (all a host without the driver can show): the import of the
    # shipped pynvml, with this run's bootstrap, stopped once pynvml is imported.
    probe = probe_bootstrap(
        "from fleetscope_collectors import gpus\nanswer({'pynvml': gpus.load_pynvml().__name__})\n")
    ping_args = work / "ping.json"  # what pipelining sends on stdin after the module
    ping_args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {}}))

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # a host's python3 has none of ours

    def measure_once(cmd, stdin=None):
        with open(stdin or os.devnull, "rb") as fin:
            proc = subprocess.run([python, "-S", "-c", LAUNCHER, *map(str, cmd)], stdin=fin, env=env,
                                  capture_output=True, text=True, check=True, cwd=ROOT)
        status, cpu, maxrss_kib, wall = json.loads(proc.stdout.strip().splitlines()[-1])
        if status:
            raise RuntimeError(f"{cmd} failed with status {status}")
        return cpu, maxrss_kib * 1024, wall

    contenders = [
        ("bare", [python, "-c", "pass"], None),
        # the shipped bytecode runs where the host's Python has the controller's magic number (what the action
        # sends a host whose Python it knows); "module_compiling" is what a host with another Python pays
        ("module", [python, "-c", STUB], sent("payload", pythons=[python])),
        ("module_compiling", [python, "-c", STUB], sent("payload_sources", bytecode=False)),
        ("pynvml_import", [python, "-c", STUB], sent("payload_gpu", bootstrap=probe, pythons=[python])),
        ("pynvml_import_unpruned", [python, "-c", STUB],
         sent("payload_gpu_unpruned", bootstrap=probe, pythons=[python], prune=False)),
        ("pynvml_import_unlightened", [python, "-c", STUB],
         sent("payload_gpu_unlightened", bootstrap=probe, pythons=[python], sources=unlightened, prune=False)),
        ("pynvml_import_compiling", [python, "-c", STUB],
         sent("payload_gpu_sources", bytecode=False, bootstrap=probe)),
        ("collector", [python, "-m", "collectors"], None),
    ]
    if (BIN / "ansible").exists():  # Ansible's cheapest module, for scale (a GPU machine may have no Ansible)
        contenders.insert(1, ("ping_module", [python, str(ansiballz(work, "ping"))], ping_args))
    if driver_present():  # the GPUs read as the collector did before shipped_pynvml
        contenders.insert(3, ("module_unlightened", [python, "-c", STUB],
                              sent("payload_unlightened", pythons=[python], sources=unlightened, prune=False)))
        contenders.insert(3, ("module_unpruned", [python, "-c", STUB],
                              sent("payload_unpruned", pythons=[python], prune=False)))
        if shutil.which("nvidia-smi"):  # the tool an admin would run instead, for the same GPU fields
            contenders.append(("nvidia_smi", [shutil.which("nvidia-smi"), f"--query-gpu={NVIDIA_SMI_FIELDS}",
                                              "--format=csv,noheader"], None))
    if subsystems:
        from collectors import SUBSYSTEMS

        contenders += [(f"only_{name or 'none'}", [python, "-c", STUB],
                        sent(f"payload_only_{name}", pythons=[python], only=[name] if name else []))
                       for name in ["", *SUBSYSTEMS]]
    if other:  # a host of a mixed fleet: the bytecode the controller compiled with its own copy of that Python
        contenders += [
            ("other_bare", [other, "-c", "pass"], None),
            ("other_module", [other, "-c", STUB], sent("other_payload", pythons=[other])),
            ("other_module_compiling", [other, "-c", STUB], sent("other_payload_sources", bytecode=False)),
            ("other_pynvml_import", [other, "-c", STUB], sent("other_payload_gpu", bootstrap=probe, pythons=[other])),
        ]
    # Round-robin, not one contender after the other: a few-ms process is at the mercy of what else the
    # machine does, and interleaving spreads that over all of them alike.
    samples = {name: [] for name, _, _ in contenders}
    for _ in range(repeat):
        for name, cmd, stdin in contenders:
            samples[name].append(measure_once(cmd, stdin))
    out = {"python": python, "nvidia_driver": driver_present()}
    for name, runs in samples.items():
        out[f"{name}_cpu_s"] = statistics.median(cpu for cpu, _, _ in runs)
        out[f"{name}_rss_bytes"] = statistics.median(rss for _, rss, _ in runs)
        out[f"{name}_wall_s"] = statistics.median(wall for _, _, wall in runs)
    for name in samples:
        if name not in ("bare", "other_bare") and not name.startswith("other_"):
            out[f"ratio_cpu_{name}"] = out[f"{name}_cpu_s"] / out["bare_cpu_s"]
            out[f"ratio_rss_{name}"] = out[f"{name}_rss_bytes"] / out["bare_rss_bytes"]
    out["ratio_cpu"], out["ratio_rss"] = out["ratio_cpu_module"], out["ratio_rss_module"]
    out["ratio_cpu_compiling"] = out["ratio_cpu_module_compiling"]
    out["ratio_cpu_pynvml"] = out["ratio_cpu_pynvml_import"]
    out["ratio_cpu_pynvml_compiling"] = out["ratio_cpu_pynvml_import_compiling"]
    if "ping_module_cpu_s" in out:
        out["ratio_cpu_vs_ping"] = out["module_cpu_s"] / out["ping_module_cpu_s"]
    if other:
        out["other_python"] = other
        out["ratio_other_cpu"] = out["other_module_cpu_s"] / out["other_bare_cpu_s"]
        out["ratio_other_cpu_compiling"] = out["other_module_compiling_cpu_s"] / out["other_bare_cpu_s"]
        out["ratio_other_cpu_pynvml"] = out["other_pynvml_import_cpu_s"] / out["other_bare_cpu_s"]
    return out


def print_host_cost(hc: dict) -> None:
    def ms(name):
        return f"{hc[name + '_cpu_s'] * 1000:.0f} ms"

    def mib(name):
        return f"{hc[name + '_rss_bytes'] / 2**20:.0f} MiB"

    ping = (f"; Ansible's ping module {ms('ping_module')} (x{hc['ratio_cpu_vs_ping']:.2f})"
            if "ping_module_cpu_s" in hc else "")
    print(f"host cost ({hc['python']}): fleetscope_collect {ms('module')} CPU, {mib('module')}, "
          f"{hc['module_wall_s'] * 1000:.0f} ms wall; bare python3 {ms('bare')}, {mib('bare')} "
          f"(x{hc['ratio_cpu']:.1f} CPU, x{hc['ratio_rss']:.1f} memory){ping}; the collector alone, from an "
          f"installed package, {ms('collector')}")
    if "module_unlightened_cpu_s" in hc:
        print(f"  GPUs read with the shipped pynvml not pruned: {ms('module_unpruned')}, "
              f"{mib('module_unpruned')} (x{hc['ratio_cpu_module_unpruned']:.1f}); with nvidia-ml-py's pynvml as "
              f"it is: {ms('module_unlightened')}, {mib('module_unlightened')} "
              f"(x{hc['ratio_cpu_module_unlightened']:.1f})")
    if "nvidia_smi_cpu_s" in hc:
        print(f"  nvidia-smi --query-gpu, the same fields: {ms('nvidia_smi')}, {mib('nvidia_smi')} "
              f"(x{hc['ratio_cpu_nvidia_smi']:.1f})")
    print(f"  another Python (compiling the sources): {ms('module_compiling')} (x{hc['ratio_cpu_compiling']:.1f}); "
          f"importing the shipped pynvml (a GPU host, before NVML's calls): {ms('pynvml_import')}, "
          f"{mib('pynvml_import')} (x{hc['ratio_cpu_pynvml']:.1f}); not pruned: {ms('pynvml_import_unpruned')} "
          f"(x{hc['ratio_cpu_pynvml_import_unpruned']:.1f}); nvidia-ml-py's as it is: "
          f"{ms('pynvml_import_unlightened')} (x{hc['ratio_cpu_pynvml_import_unlightened']:.1f}); compiling the "
          f"shipped one: {ms('pynvml_import_compiling')}, {mib('pynvml_import_compiling')} "
          f"(x{hc['ratio_cpu_pynvml_compiling']:.1f})")
    parts = [k[len("only_"):-len("_cpu_s")] for k in hc if k.startswith("only_") and k.endswith("_cpu_s")]
    if parts:
        print("  one subsystem alone (none: the bootstrap and the package): "
              + ", ".join(f"{name} {ms('only_' + name)}" for name in parts))
    if "other_python" in hc:
        print(f"  a host with {hc['other_python']}: bare {hc['other_bare_cpu_s'] * 1000:.0f} ms; the bytecode "
              f"shipped for it {hc['other_module_cpu_s'] * 1000:.0f} ms (x{hc['ratio_other_cpu']:.2f}), "
              f"compiling {hc['other_module_compiling_cpu_s'] * 1000:.0f} ms "
              f"(x{hc['ratio_other_cpu_compiling']:.2f}); pynvml's import "
              f"{hc['other_pynvml_import_cpu_s'] * 1000:.0f} ms (x{hc['ratio_other_cpu_pynvml']:.1f})")


def print_cold_cpu(r: dict) -> None:
    """The controller's CPU of one cold run, fleetscope against the floor, and what one SSH handshake costs."""
    hs = r["ssh_handshake"]
    print(f"{'':>5} controller CPU, cold: fleetscope {r['fleetscope_cold_cpu']:.2f} s, the floor's ssh clients "
          f"{r['floor_cold_cpu']:.2f} s (x{r['ratio_cpu_floor_cold']:.2f}); one new SSH connection "
          f"{hs['default_cpu_s'] * 1000:.0f} ms of client CPU (key exchange {hs['kex']}), "
          f"{hs['curve25519_cpu_s'] * 1000:.0f} ms with curve25519-sha256")


def print_cpu_fits(sizes: list[dict]) -> dict:
    """Controller CPU per run as fixed + per host, fitted over the sizes (two or more)."""
    fits = {}
    if len({r["hosts"] for r in sizes}) < 2:
        return fits
    hosts = [r["hosts"] for r in sizes]
    for key, label in (("fleetscope_cpu", "fleetscope, warm"), ("fleetscope_cold_cpu", "fleetscope, cold"),
                       ("floor_cold_cpu", "the floor, cold")):
        if all(key in r for r in sizes):
            fixed, per_host = linear_fit(hosts, [r[key] for r in sizes])
            fits[key] = {"fixed_s": fixed, "per_host_s": per_host}
            print(f"controller CPU per run, {label}: {fixed:.2f} s + {per_host:.3f} s per host "
                  f"(fitted over {', '.join(map(str, hosts))} hosts)")
    return fits


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.collect_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rtt-ms", type=float, default=0,
                   help="route every SSH connection through benchmarks/delay_proxy.py: a network's round trip")
    p.add_argument("--only-cold", action="store_true",
                   help="only the cold runs (floor, fleetscope, fleetscope without ssh_warmup); no host cost")
    p.add_argument("--only-host", action="store_true",
                   help="only the host cost (into benchmarks/out/host-cost.json): no sshd, no Ansible needed")
    p.add_argument("--python", metavar="PATH", default=PYTHON,
                   help=f"the host's interpreter for the host cost (default {PYTHON})")
    p.add_argument("--host-repeat", type=int, default=31, metavar="N",
                   help="host cost: runs of each contender, interleaved (default 31: a few-ms process drifts)")
    p.add_argument("--subsystems", action="store_true",
                   help="host cost: also each subsystem's collection alone, and the bootstrap alone")
    p.add_argument("--other-python", metavar="PATH", default=None,
                   help="a Python of another minor version, for the host cost of a mixed fleet "
                        "(default: the first found in /usr/bin or pyenv; 'none' to skip)")
    args = p.parse_args(argv)
    args.sizes = list(dict.fromkeys(args.sizes))  # each size once: a size's fleet and folders are its own
    work = Path(tempfile.mkdtemp(prefix="fleetscope-bench-"))
    try:
        other = None if args.other_python == "none" else args.other_python or other_python(args.python)
        out = {}
        if args.only_cold:
            print(f"{'hosts':>5} {'RTT ms':>7} {'cold: floor s':>14} {'fleetscope s':>13} {'/floor':>7} "
                  f"{'no ssh_warmup s':>16} {'/floor':>7} {'warmup/none':>12}")
            out["sizes"] = [bench_size(n, args.repeat, work, args.rtt_ms, only_cold=True) for n in args.sizes]
            for r in out["sizes"]:
                print(f"{r['hosts']:>5} {args.rtt_ms:>7g} {r['floor_cold']:>14.2f} {r['fleetscope_cold']:>13.2f} "
                      f"{r['ratio_floor_cold']:>7.2f} {r['fleetscope_cold_no_warmup']:>16.2f} "
                      f"{r['ratio_floor_cold_no_warmup']:>7.2f} {r['ratio_warmup']:>12.2f}")
                print_cold_cpu(r)
            out["cpu_fits"] = print_cpu_fits(out["sizes"])
            write_result(f"collect-cold-rtt{args.rtt_ms:g}.json", out)
            return out
        out["host_cost"] = host_cost(args.host_repeat, work, other, args.python, args.subsystems)
        print_host_cost(out["host_cost"])
        if args.only_host:
            write_result("host-cost.json", out)
            return out
        out["sizes"] = []
        print(f"{'hosts':>5} {'floor s':>8} {'setup s':>8} {'playbook s':>11} {'fleetscope s':>13} {'/floor':>7} "
              f"{'/setup':>7} {'/playbook':>9} {'ctl CPU/host':>13} {'cold: floor s':>14} {'fleetscope s':>13} "
              f"{'/floor':>7} {'no ssh_warmup':>14}")
        for n in args.sizes:
            r = bench_size(n, args.repeat, work, args.rtt_ms)
            out["sizes"].append(r)
            print(f"{n:>5} {r['floor']:>8.2f} {r['setup']:>8.2f} {r['playbook']:>11.2f} {r['fleetscope']:>13.2f} "
                  f"{r['ratio_floor']:>7.2f} {r['ratio_setup']:>7.2f} {r['ratio_playbook']:>9.2f} "
                  f"{r['controller_cpu_per_host']:>12.3f}s {r['floor_cold']:>14.2f} {r['fleetscope_cold']:>13.2f} "
                  f"{r['ratio_floor_cold']:>7.2f} {r['ratio_floor_cold_no_warmup']:>14.2f}")
            print(f"{'':>5} interpreters not in the inventory: remembered {r['discovered']:.2f} s "
                  f"(x{r['ratio_discovered']:.2f}), discovered on the run {r['discovering']:.2f} s "
                  f"(x{r['ratio_discovering']:.2f}) against named")
            print_cold_cpu(r)
        out["cpu_fits"] = print_cpu_fits(out["sizes"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result("collect.json", out)
    return out


if __name__ == "__main__":
    main()
