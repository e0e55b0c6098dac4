"""Where a cold collection's CPU goes, process by process, on loopback sshd hosts: fleetscope against the floor.

    sudo .venv/bin/python -m benchmarks.cold_cpu [--sizes 8 16] [--repeat 5]

Needs root and BSD process accounting (Debian: `apt-get install acct`, for `accton` and `dump-acct`): the
kernel writes every process's CPU time when it exits, so ssh's ControlPersist masters, Ansible's forked
workers and the hosts' sshd sessions are counted as well as the processes a profiler would see.

For each fleet size N (N real sshd on 127.0.0.2 ...), `--repeat` rounds, alternating, each with every SSH
connection new (as under cron):
  floor      N parallel `ssh HOST python3 -m collectors` (collect_bench's floor)
  fleetscope `fleetscope collect --no-report` with forks = N (collect_bench's cold run, ssh_warmup on)
and, per run, the CPU seconds of each kind of process (medians over the rounds):
  ssh clients               every `ssh` on the controller (the handshakes: most of the floor)
  ansible-playbook          fleetscope's ansible-playbook process (its start, the play, the callbacks)
  ansible workers           the processes it forks, one per host
  fleetscope                the `fleetscope collect` process (its start, ansible-runner, spool, ingest)
  hosts                     sshd sessions and what runs under them: on loopback, the same cores
With every process on the same cores, a run cannot end before its CPU divided by the cores: that bound,
against the floor's wall time, is the least ratio any scheduling of the same work could reach here. The
kernel records a process's CPU time in whole 10 ms (AHZ), cut, not rounded: each record is up to 10 ms
low, so the totals are lower bounds (by up to 10 ms times the processes counted, which are printed),
and so is the ratio drawn from them. Wall times are those of the runs alone, as collect_bench measures
them: the ending of the masters afterwards is not in them (its processes' CPU is).
Results into benchmarks/out/cold-cpu.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import write_result  # noqa: E402
from benchmarks.collect_bench import BIN, PYTHON, Cold, as_cron, floor  # noqa: E402
from tests.sshd import SshdFleet  # noqa: E402

KINDS = ("ssh clients", "ansible-playbook", "ansible workers", "fleetscope", "hosts", "other")


def accounted(log: Path, run) -> tuple[float, list[dict]]:
    """(what ``run()`` returns: the wall seconds of the run itself, the accounting records of the processes
    that ended while it ran, its set-up and clean-up included: the masters end in its clean-up)."""
    log.write_bytes(b"")
    subprocess.run(["accton", str(log)], check=True, capture_output=True)
    try:
        wall = run()
        time.sleep(0.3)  # the masters ended by run() write their records
    finally:
        subprocess.run(["accton", "off"], check=True, capture_output=True)
    records = []
    for line in subprocess.run(["dump-acct", str(log)], check=True, capture_output=True, text=True).stdout.splitlines():
        f = [x.strip() for x in line.split("|")]
        # command | version | user | system | elapsed (clock ticks) | uid | gid | memory | io | pid | ppid | ...
        records.append({"comm": f[0], "cpu": (float(f[2]) + float(f[3])) / os.sysconf("SC_CLK_TCK"),
                        "pid": int(f[9]), "ppid": int(f[10])})
    return wall, records


def by_kind(records: list[dict]) -> Counter:
    """CPU seconds per kind of process (KINDS), by each process's name and its ancestors'. Of the Pythons
    `fleetscope` starts, ansible-playbook is the one whose children are Pythons (its workers); another (a
    Python compiling the collector for the hosts, stage.compile_with) is "other"."""
    pids = {r["pid"]: r for r in records}
    playbooks = {r["ppid"] for r in records if r["comm"].startswith("python")
                 and pids.get(r["ppid"], {}).get("comm", "").startswith("python")
                 and pids.get(pids[r["ppid"]]["ppid"], {}).get("comm") == "fleetscope"}

    def ancestors(r):
        seen = 0
        while r is not None and seen < 64:
            yield r
            r, seen = pids.get(r["ppid"]), seen + 1

    out = Counter()
    for r in records:
        chain = list(ancestors(r))
        if any(a["comm"].startswith("sshd") for a in chain):
            kind = "hosts"
        elif r["comm"] == "ssh":
            kind = "ssh clients"
        elif r["comm"] == "fleetscope":
            kind = "fleetscope"
        elif r["pid"] in playbooks:
            kind = "ansible-playbook"
        elif r["comm"].startswith("python") and any(a["pid"] in playbooks for a in chain[1:]):
            kind = "ansible workers"
        elif r["comm"] in ("accton", "sleep"):
            continue
        else:
            kind = "other"
        out[kind] += r["cpu"]
    return out


def bench_size(n: int, repeat: int, work: Path) -> dict:
    fleet = SshdFleet(work / f"sshd{n}", count=n).start()
    try:
        inventory = work / f"inv{n}.ini"
        inventory.write_text(fleet.inventory(PYTHON))
        config = work / f"fs{n}.toml"
        config.write_text(f"[collect]\nforks = {n}\n")
        cold = Cold(work / f"cold{n}")
        env = dict(as_cron(), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
        command = [BIN / "fleetscope", "collect", "--config", str(config), "--data", str(work / f"data{n}"),
                   "--no-report", "--inventory", str(inventory)]

        def fleetscope() -> float:
            with cold as cp_dir:  # its clean-up ends the masters, outside the time measured
                began = time.perf_counter()
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                               env=dict(env, ANSIBLE_SSH_CONTROL_PATH_DIR=str(cp_dir)))
                return time.perf_counter() - began

        def the_floor() -> float:
            with cold as cp_dir:
                return floor(fleet, cp_dir)[0]

        fleetscope()  # its hosts' SSH command lines recorded (ssh_warmup), the warehouse created
        the_floor()
        runs = {"floor": defaultdict(list), "fleetscope": defaultdict(list)}
        log = work / "acct"
        for _ in range(repeat):
            for name, run in (("floor", the_floor), ("fleetscope", fleetscope)):
                wall, records = accounted(log, run)
                kinds = by_kind(records)
                runs[name]["wall"].append(wall)
                runs[name]["cpu"].append(sum(kinds.values()))
                runs[name]["processes"].append(len(records))
                for kind in KINDS:
                    runs[name][kind].append(kinds.get(kind, 0.0))
        out = {"hosts": n, "cores": len(os.sched_getaffinity(0)), "repeat": repeat}
        for name, values in runs.items():
            out[name] = {k: statistics.median(v) for k, v in values.items()}
        out["ratio_floor"] = out["fleetscope"]["wall"] / out["floor"]["wall"]
        out["cpu_bound_s"] = out["fleetscope"]["cpu"] / out["cores"]
        out["ratio_floor_cpu_bound"] = out["cpu_bound_s"] / out["floor"]["wall"]
        return out
    finally:
        fleet.stop()


def print_size(r: dict) -> None:
    f, s = r["floor"], r["fleetscope"]
    print(f"{r['hosts']} hosts, {r['cores']} cores, medians of {r['repeat']} cold runs each (CPU s):")
    print(f"  {'':<18}{'floor':>8}{'fleetscope':>12}")
    for kind in KINDS:
        print(f"  {kind:<18}{f[kind]:>8.2f}{s[kind]:>12.2f}")
    print(f"  {'all':<18}{f['cpu']:>8.2f}{s['cpu']:>12.2f}")
    print(f"  {'processes':<18}{f['processes']:>8.0f}{s['processes']:>12.0f}   (each one's CPU recorded "
          f"in whole 10 ms: up to 10 ms low each)")
    print(f"  {'wall s':<18}{f['wall']:>8.2f}{s['wall']:>12.2f}   fleetscope / floor: {r['ratio_floor']:.2f}")
    print(f"  fleetscope's CPU over {r['cores']} cores: at least {r['cpu_bound_s']:.2f} s, "
          f"{r['ratio_floor_cpu_bound']:.2f}x the floor's wall time however it were scheduled")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cold_cpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    missing = [tool for tool in ("accton", "dump-acct") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        sys.exit("benchmarks.cold_cpu needs root and BSD process accounting"
                 + (f" (missing: {', '.join(missing)}; Debian: apt-get install acct)" if missing else ""))
    work = Path(tempfile.mkdtemp(prefix="fleetscope-cold-cpu-"))
    try:
        out = {"sizes": []}
        for n in dict.fromkeys(args.sizes):
            out["sizes"].append(bench_size(n, args.repeat, work))
            print_size(out["sizes"][-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result("cold-cpu.json", out)
    return out


if __name__ == "__main__":
    main()
