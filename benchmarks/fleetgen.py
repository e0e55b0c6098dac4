"""A synthetic GPU fleet: host documents (docs/document.md, schema_version 1) for N hosts x G GPUs over days.

Deterministic by seed: each host draws from its own random stream (seed, host index), so the same seed gives
the same documents whatever the number of worker processes. What the fleet does:

- users come and go (some join or leave during the period; heavy and light users; more jobs in working
  hours and on weekdays), and start jobs on free GPUs of a host: training (high utilization, power near the
  limit), serving (utilization following the day), notebooks (memory held at ~0 % utilization) and short
  debug runs; a training job sometimes hangs and holds its memory idle until it is killed. Free GPUs use
  ~0 memory at idle power, with the ``gpu_idle`` throttle reason.
- cumulative counters grow with what runs: CPU jiffies, network and disk bytes since boot, and each GPU's
  energy counter (mJ since the driver loaded) by the mean of consecutive power readings times the time.
- events: planned reboots (a few minutes down, sometimes a kernel upgrade), crashes (down for a stretch,
  then a reboot), network outages (unreachable, but the host and its jobs go on), driver reloads (the
  energy counters restart, sometimes a driver upgrade), collection timeouts, rare ECC errors and
  subsystem errors. A reboot sets a new boot_time and restarts the counters from ~0.

    generate(data_dir, hosts=100, gpus=8, days=30)   # warehouse Parquet, one file per table and day
    spool_runs(data_dir, runs=12, hosts=100)          # real spooled runs for `ingest_pending`
    Fleet(hosts=3, gpus=2).run(0)                     # one run: (run_id, started_at, [spooled results])
"""

from __future__ import annotations

import gc
import hashlib
import math
import multiprocessing
import os
import queue
import random
import sys
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

GIB = 1024**3
MIB = 1024**2
DAY = 86400
USER_HZ = 100
DEFAULT_START = datetime(2026, 3, 2)  # a Monday, 00:00 UTC
_EPOCH = datetime(1970, 1, 1)

# name, memory total, power limit W, idle W, SM max MHz, memory MHz, memory temperature supported, ECC, PCIe gen
GPU_MODELS = {
    "h100": ("NVIDIA H100 80GB HBM3", 81559 * MIB, 700.0, 70.0, 1980, 2619, True, True, 5),
    "a100": ("NVIDIA A100-SXM4-80GB", 81920 * MIB, 400.0, 55.0, 1410, 1593, True, True, 4),
    "l40s": ("NVIDIA L40S", 46068 * MIB, 350.0, 34.0, 2520, 9001, False, False, 4),
}
# host flavour: gpu model key, weight, cpu model, logical CPUs, memory
FLAVOURS = (
    ("h100", 0.55, "Intel(R) Xeon(R) Platinum 8480+", 224, 2048 * GIB),
    ("a100", 0.30, "AMD EPYC 7763 64-Core Processor", 256, 1024 * GIB),
    ("l40s", 0.15, "AMD EPYC 9354 32-Core Processor", 128, 768 * GIB),
)
OSES = (("Ubuntu 22.04.4 LTS", ["5.15.0-105-generic", "5.15.0-113-generic", "5.15.0-119-generic"], "3.10.12"),
        ("Rocky Linux 9.4 (Blue Onyx)", ["5.14.0-427.13.1.el9_4.x86_64", "5.14.0-427.22.1.el9_4.x86_64",
                                         "5.14.0-427.31.1.el9_4.x86_64"], "3.9.18"))
DRIVERS = (("550.90.07", "12.4"), ("550.127.05", "12.4"), ("570.133.20", "12.8"))
SXM_BUS = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)
THROTTLE_BITS = {"gpu_idle": 0x1, "sw_power_cap": 0x4, "sw_thermal_slowdown": 0x20, "hw_thermal_slowdown": 0x40}

FIRST_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "karl", "lena", "mallory",
    "nina", "oscar", "peggy", "quentin", "rupert", "sybil", "trent", "ursula", "victor", "wendy", "xavier",
    "yasmin", "zoe", "amir", "bea", "chen", "dmitri", "elif", "fatima", "goran", "hana", "ines", "jun", "kofi",
    "lucia", "marek", "noor", "olga", "pablo", "qi", "rosa", "sanjay", "tomas", "uma", "vera", "wei", "yusuf",
)
PROJECTS = ("llm-pretrain", "vision", "speech", "rl", "protein", "retrieval", "diffusion", "ocr")
MODELS = ("meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-32B-Instruct", "mistralai/Mistral-7B-v0.3",
          "google/gemma-2-27b", "microsoft/phi-3-medium-128k")
# job kind -> (GPUs per job with weights, median duration s, lognormal sigma, longest s)
KINDS = {
    "train": (((1, 0.35), (2, 0.2), (4, 0.2), (8, 0.25)), 4 * 3600, 1.1, 72 * 3600),
    "serve": (((1, 0.5), (2, 0.3), (4, 0.15), (8, 0.05)), 20 * 3600, 1.0, 10 * DAY),
    "notebook": (((1, 0.85), (2, 0.15)), 4 * 3600, 0.9, 2 * DAY),
    "debug": (((1, 0.7), (2, 0.2), (4, 0.1)), 25 * 60, 0.8, 4 * 3600),
}
PROFILES = {  # a user's habits: weights of job kinds
    "trainer": {"train": 0.7, "notebook": 0.12, "debug": 0.18},
    "explorer": {"train": 0.35, "notebook": 0.4, "debug": 0.25},
    "service": {"serve": 0.75, "train": 0.1, "debug": 0.15},
}
# Event rates per host and day (times the `chaos` multiplier); timeouts are per host and run.
RATES = {"reboot": 1 / 30, "crash": 1 / 60, "net_outage": 1 / 25, "driver_reload": 1 / 40, "ecc": 1 / 2500}
TIMEOUT_P = 0.0003
WARMUP_DAYS = 4
JOBS_PER_GPU_HOUR = 0.06  # arrival rate at diurnal factor 1 (tuned for ~60 % of GPUs allocated on weekdays)
SYSTEM_PROCESSES = (
    ("root", "/usr/lib/systemd/systemd --switched-root --system --deserialize 31", 0.002, 14 * MIB),
    ("root", "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock", 0.01, 95 * MIB),
    ("root", "/usr/sbin/slurmd --systemd", 0.004, 30 * MIB),
    ("nvidia-persistenced", "/usr/bin/nvidia-persistenced --user nvidia-persistenced", 0.001, 2 * MIB),
    ("root", "/usr/bin/nv-hostengine -n --service-account nvidia-dcgm", 0.03, 60 * MIB),
)


def iso(t: float) -> str:
    """Epoch seconds as the controller writes times in the spool (naive UTC, space separated)."""
    return (_EPOCH + timedelta(seconds=t)).isoformat(sep=" ", timespec="microseconds")


def iso_z(t: float, micro: bool = True) -> str:
    """Epoch seconds as the collector writes times in the document (ISO 8601, Z)."""
    return (_EPOCH + timedelta(seconds=t)).isoformat(timespec="microseconds" if micro else "seconds") + "Z"


_NORMALS = [random.Random(0).gauss(0.0, 1.0) for _ in range(65536)]


def _gauss(rng: random.Random, mu: float, sd: float) -> float:
    """A normal deviate: a draw from a fixed table (4x faster than random.gauss, as random for this use)."""
    return mu + sd * _NORMALS[int(rng.random() * 65536)]


def epoch(t: datetime) -> float:
    return (t - _EPOCH).total_seconds()


def _lognormal(rng: random.Random, median: float, sigma: float, longest: float) -> float:
    return min(longest, median * math.exp(_gauss(rng, 0.0, sigma)))


def _pick(rng: random.Random, weighted) -> object:
    x, acc = rng.random() * sum(w for _, w in weighted), 0.0
    for value, w in weighted:
        acc += w
        if x < acc:
            return value
    return weighted[-1][0]


def diurnal(t: float) -> float:
    """How busy people are at UTC time t: working hours, evenings, nights, weekends."""
    hour = (t % DAY) / 3600
    weekday = int(t // DAY + 3) % 7  # 1970-01-01 was a Thursday: 0 = Monday
    f = 1.7 if 8 <= hour < 18 else 0.8 if 18 <= hour < 23 else 0.3
    return f * (0.45 if weekday >= 5 else 1.0)


@dataclass
class User:
    name: str
    weight: float
    joins: float  # epoch seconds
    leaves: float
    profile: str


def make_users(seed: int, hosts: int, start: float, horizon_s: float) -> list[User]:
    rng = random.Random(f"{seed}/users")
    n = max(5, hosts // 2 + 5)
    users = []
    for i in range(n):
        name = FIRST_NAMES[i % len(FIRST_NAMES)] + ("" if i < len(FIRST_NAMES) else str(i // len(FIRST_NAMES)))
        joins = start - 60 * DAY if rng.random() < 0.7 else start + rng.uniform(0, horizon_s)  # 70 % were there
        leaves = joins + rng.uniform(0.3, 1.0) * horizon_s if rng.random() < 0.2 else float("inf")
        profile = _pick(rng, (("trainer", 0.55), ("explorer", 0.35), ("service", 0.10)))
        users.append(User(name, min(8.0, rng.lognormvariate(0.0, 0.9)), joins, leaves, profile))
    return users


@dataclass
class Job:
    user: str
    kind: str
    command: str
    pid: int
    start: float
    end: float
    gpus: list[int]
    util: float  # mean utilization %
    util_sd: float
    mem_frac: float  # of each GPU's memory
    mem_intensity: float  # utilization_mem_pct / utilization_gpu_pct
    power_factor: float
    cpu_cores: float  # per process
    rss: int  # per process
    io_read_bps: float
    io_write_bps: float
    net_bps: float
    hang_at: float = float("inf")
    started_z: str = ""


class Gpu:
    def __init__(self, host: Host, index: int, model: str):
        rng = host.rng
        (self.name, self.mem_total, self.limit, self.idle_w, self.sm_max, self.mem_clock, mem_temp, self.ecc,
         pcie) = GPU_MODELS[model]
        self.index = index
        h = hashlib.md5(f"{host.fleet_seed}/{host.name}/{index}".encode()).hexdigest()
        self.uuid = f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        bus = SXM_BUS[index] if index < len(SXM_BUS) else 0x18 + 0x10 * index
        self.cooling = 0.095 if rng.random() < 0.03 else rng.uniform(0.055, 0.07)  # degrees C per W
        self.jobs: list[Job] = []
        self.temp = host.ambient + self.idle_w * self.cooling
        self.power = self.idle_w
        self.energy = 0.0  # mJ since the driver loaded
        self.ecc_volatile = 0 if self.ecc else None
        self.ecc_aggregate = 0 if self.ecc else None
        self.remapped = 0 if self.ecc else None
        self.pending = False if self.ecc else None
        self.static = {
            "index": index, "uuid": self.uuid, "name": self.name, "serial": str(rng.randrange(10**12, 10**13)),
            "bus_id": f"00000000:{bus % 256:02X}:00.0", "mem_total_bytes": self.mem_total,
            "mem_reserved_bytes": 529 * MIB if model != "l40s" else 440 * MIB, "power_limit_w": self.limit,
            "fan_pct": None, "clock_sm_max_mhz": self.sm_max, "ecc_mode": self.ecc,
            "retired_pages": None, "persistence_mode": True, "compute_mode": "default", "mig_mode": False,
            "accounting_mode": False, "pcie_gen": pcie, "pcie_width": 16, "accounting": [], "mig_devices": [],
            "errors": [],
        }
        self.has_mem_temp = mem_temp
        self.idle_mem = rng.choice((0, 1, 2, 4)) * MIB


class Host:
    def __init__(self, fleet: Fleet, index: int):
        self.fleet_seed = fleet.seed
        self.fleet = fleet
        self.index = index
        self.name = f"gpu{index + 1:03d}"
        self.rng = rng = random.Random(f"{fleet.seed}/host/{index}")
        model, _, self.cpu_model, self.cores, self.mem_total = _pick(rng, [(f, f[1]) for f in FLAVOURS])
        self.os_name, kernels, self.python = OSES[0] if rng.random() < 0.8 else OSES[1]
        self.kernels, self.kernel = kernels, 0
        self.driver = 0 if rng.random() < 0.7 else 1
        self.ambient = rng.uniform(22, 30)
        self.skew = _gauss(rng, 0, 0.02) if rng.random() < 0.9 else rng.choice((-1, 1)) * rng.uniform(1, 40)
        self.offset = rng.uniform(0.5, 3.0)  # when in a run this host answers
        self.gpus = [Gpu(self, i, model) for i in range(fleet.gpus)]
        self.jobs: list[Job] = []
        self.pid = rng.randrange(3000, 9000)
        self.last_t: float | None = None
        self.down_until = -1.0  # crashed or rebooting: no counters, no jobs
        self.unreachable_until = -1.0  # network outage: the host goes on, the controller cannot reach it
        self.fs_scratch_total = 7680 * 10**9
        self.fs_scratch_used = rng.uniform(0.2, 0.6) * self.fs_scratch_total
        self.fs_root_used = rng.uniform(0.1, 0.3) * 1900 * 10**9
        self.procs_error_until = -1.0
        first_boot = fleet.t0 - rng.uniform(WARMUP_DAYS + 1, 40) * DAY
        self._boot(first_boot, fleet.t0 - fleet.interval_s)
        for g in self.gpus:  # the energy used since the driver loaded, at some mean power
            g.energy = (fleet.t0 - self.driver_loaded) * rng.uniform(0.3, 0.6) * g.limit * 1000
        # The fleet was busy before the period starts: jobs arrive and end over a few days first.
        t = fleet.t0 - WARMUP_DAYS * DAY
        while t < fleet.t0:
            self._end_jobs(t)
            self._arrivals(t, fleet.interval_s)
            t += fleet.interval_s
        self.last_t = fleet.t0 - fleet.interval_s

    # -- state changes ---------------------------------------------------------------------------------

    def _boot(self, boot: float, now: float) -> None:
        """The host (re)booted at `boot`: counters since then, drivers loaded, no jobs."""
        rng = self.rng
        self.boot = boot
        self.boot_z = iso_z(boot, micro=False)
        self.jobs = []
        for g in self.gpus:
            g.jobs = []
            g.energy, g.power = 0.0, g.idle_w
            if g.ecc:
                g.ecc_volatile = 0
                if g.pending:
                    g.pending, g.remapped = False, g.remapped + 1
        self.driver_loaded = boot + rng.uniform(20, 60)
        self.jiffies = dict.fromkeys(("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"), 0.0)
        self.net = [[0.0] * 4, [0.0] * 4]  # eth0, ib0: rx, tx bytes, rx, tx packets
        self.disk = [[0.0] * 5, [0.0] * 5]  # nvme0n1, nvme1n1: read, write bytes, reads, writes, io ms
        self.load = [0.1, 0.1, 0.1]
        self.pid = rng.randrange(2500, 6000)
        self.sys_pids = [1] + sorted(rng.sample(range(700, 2400), len(SYSTEM_PROCESSES) - 1))
        self._accrue(boot, max(boot, now), busy_cores=2.0, io=(5e6, 2e6), net=1e6)
        self.facts = None

    def _reload_driver(self, at: float) -> None:
        for g in self.gpus:
            g.jobs, g.energy, g.power = [], 0.0, g.idle_w
            if g.ecc:
                g.ecc_volatile = 0
        self.jobs = []
        self.driver_loaded = at
        if self.rng.random() < 0.5 and self.driver < len(DRIVERS) - 1:
            self.driver += 1
            self.facts = None

    def _accrue(self, t0: float, t1: float, busy_cores: float, io: tuple[float, float], net: float) -> None:
        """Counters over (t0, t1] for a host running `busy_cores`, moving `io` disk and `net` bytes/s."""
        dt = t1 - t0
        if dt <= 0:
            return
        total = self.cores * USER_HZ * dt
        busy = min(0.98, busy_cores / self.cores)
        j = self.jiffies
        j["user"] += total * busy * 0.86
        j["nice"] += total * busy * 0.01
        j["system"] += total * busy * 0.1
        j["softirq"] += total * busy * 0.01
        iowait = total * min(0.02, io[0] / 4e10)
        j["iowait"] += iowait
        j["idle"] += total * (1 - busy * 0.98) - iowait
        for iface, rate in ((self.net[0], 2e4 + net * 0.01), (self.net[1], net)):
            iface[0] += rate * dt
            iface[1] += rate * 0.15 * dt
            iface[2] += rate * dt / 1500
            iface[3] += rate * 0.15 * dt / 1500
        for dev, (r, w) in ((self.disk[0], (2e5 + io[0] * 0.05, 4e5 + io[1] * 0.05)), (self.disk[1], io)):
            dev[0] += r * dt
            dev[1] += w * dt
            dev[2] += r * dt / 131072
            dev[3] += w * dt / 262144
            dev[4] += min(dt * 1000, (r + w) / 3e9 * dt * 1000)
        self.fs_scratch_used += io[1] * dt * 0.3
        if self.fs_scratch_used > 0.85 * self.fs_scratch_total:  # the scratch purge
            self.fs_scratch_used = 0.45 * self.fs_scratch_total
        self.fs_root_used += 50 * dt

    def _events(self, t: float, dt: float) -> None:
        rng, chaos = self.rng, self.fleet.chaos
        p = {k: 1 - math.exp(-v * chaos * dt / DAY) for k, v in RATES.items()}
        if rng.random() < p["crash"]:
            self.down_until = t + _lognormal(rng, 2 * 3600, 1.0, 12 * 3600)
            self.crashed_at = t - rng.uniform(0, dt)
            self.jobs = []
            for g in self.gpus:
                g.jobs = []
        elif rng.random() < p["reboot"]:
            self.down_until = t + rng.uniform(150, 700)
            self.crashed_at = t
            if rng.random() < 0.5 and self.kernel < len(self.kernels) - 1:
                self.kernel += 1
        elif rng.random() < p["net_outage"]:
            self.unreachable_until = t + _lognormal(rng, 1800, 1.0, 6 * 3600)
        elif rng.random() < p["driver_reload"]:
            self._reload_driver(t - rng.uniform(0, dt))
        for g in self.gpus:
            if g.ecc and rng.random() < p["ecc"]:
                g.ecc_volatile += 1
                g.ecc_aggregate += 1
                g.pending = True
        if rng.random() < 0.0002 * chaos:
            self.procs_error_until = t + rng.uniform(0, 3) * self.fleet.interval_s

    def _end_jobs(self, t: float) -> None:
        if any(job.end <= t for job in self.jobs):
            for job in self.jobs:
                if job.end <= t:
                    for i in job.gpus:
                        self.gpus[i].jobs.remove(job)
            self.jobs = [j for j in self.jobs if j.end > t]

    def _arrivals(self, t: float, dt: float) -> None:
        rng, fleet = self.rng, self.fleet
        rate = JOBS_PER_GPU_HOUR * len(self.gpus) * diurnal(t) * dt / 3600
        n = 0
        x = rng.random()
        p = term = math.exp(-rate)
        while x > p and n < 20:  # Poisson
            n += 1
            term *= rate / n
            p += term
        for _ in range(n):
            user = fleet.pick_user(rng, t)
            if user is None:
                return
            kind = _pick(rng, list(PROFILES[user.profile].items()))
            sizes, median, sigma, longest = KINDS[kind]
            k = min(_pick(rng, sizes), len(self.gpus))
            free = [g for g in self.gpus if not g.jobs]
            if len(free) < k and kind == "train" and free:
                k = 1 << (len(free).bit_length() - 1)  # it fits a smaller job in what is free
            if len(free) < k:
                shared = [g for g in self.gpus if all(j.kind in ("notebook", "debug") for j in g.jobs)]
                if kind in ("notebook", "debug") and k == 1 and shared and rng.random() < 0.3:
                    free = [rng.choice(shared)]  # a shared development GPU
                else:
                    continue  # no room here: the job goes elsewhere
            start = t - rng.uniform(0, dt)
            job = self._job(user.name, kind, k, start, start + _lognormal(rng, median, sigma, longest))
            for g in free[:k]:
                g.jobs.append(job)
                job.gpus.append(g.index)
            self.jobs.append(job)

    def _job(self, user: str, kind: str, k: int, start: float, end: float) -> Job:
        rng = self.rng
        self.pid += rng.randrange(20, 900)
        if self.pid > 4_000_000:
            self.pid = 3000
        project, model = rng.choice(PROJECTS), rng.choice(MODELS)
        if kind == "train":
            command = rng.choice((
                f"python train.py --config configs/{project}.yaml --lr 3e-4",
                f"torchrun --nproc_per_node={k} train.py --model {model} --batch-size {rng.choice((8, 16, 32))}",
                f"python -m torch.distributed.run --nproc_per_node={k} finetune.py --wandb_key=<redacted>",
                f"/opt/conda/envs/{project}/bin/python main.py fit --trainer.devices={k}",
            ))
            job = Job(user, kind, command, self.pid, start, end, [], rng.uniform(70, 98), rng.uniform(3, 9),
                      rng.uniform(0.35, 0.97), rng.uniform(0.25, 0.6), rng.uniform(0.75, 1.0), rng.uniform(1, 6),
                      int(rng.uniform(8, 40) * GIB), rng.uniform(2e7, 3e8), rng.uniform(5e6, 5e7),
                      rng.uniform(5e7, 1e9) if k > 1 else rng.uniform(1e7, 1e8))
            if rng.random() < 0.06:
                job.hang_at = start + rng.uniform(0.1, 0.9) * (end - start)
        elif kind == "serve":
            command = rng.choice((
                f"python -m vllm.entrypoints.openai.api_server --model {model} --tensor-parallel-size {k}",
                f"text-generation-launcher --model-id {model} --num-shard {k}",
                "tritonserver --model-repository=/models --http-port 8000",
            ))
            job = Job(user, kind, command, self.pid, start, end, [], rng.uniform(20, 55), 10, 0.9,
                      rng.uniform(0.3, 0.6), rng.uniform(0.5, 0.8), rng.uniform(0.3, 1.5),
                      int(rng.uniform(4, 16) * GIB),
                      rng.uniform(1e5, 1e6), rng.uniform(1e5, 1e6), rng.uniform(1e6, 2e7))
        elif kind == "notebook":
            kernel = hashlib.md5(f"{self.name}/{self.pid}".encode()).hexdigest()
            command = (f"/opt/conda/bin/python -m ipykernel_launcher -f "
                       f"/home/{user}/.local/share/jupyter/runtime/kernel-{kernel[:8]}-{kernel[8:12]}.json")
            job = Job(user, kind, command, self.pid, start, end, [], 0, 0, rng.uniform(0.05, 0.5),
                      rng.uniform(0.2, 0.5), rng.uniform(0.6, 0.9), 0.05, int(rng.uniform(2, 12) * GIB),
                      rng.uniform(0, 2e6), rng.uniform(0, 1e6), rng.uniform(0, 1e6))
        else:
            command = rng.choice((f"python debug_{project}.py", "python bench.py --steps 200",
                                  f"python -m pytest tests/gpu -k {project}"))
            job = Job(user, kind, command, self.pid, start, end, [], 0, 0, rng.uniform(0.02, 0.6),
                      rng.uniform(0.2, 0.6), rng.uniform(0.6, 1.0), rng.uniform(0.5, 1.5), int(rng.uniform(1, 8) * GIB),
                      rng.uniform(0, 5e7), rng.uniform(0, 1e7), rng.uniform(0, 1e7))
        job.started_z = iso_z(start, micro=False)
        self.pid += k
        return job

    def _util(self, job: Job, t: float) -> float:
        rng = self.rng
        if t >= job.hang_at:
            return 0.0
        kind = job.kind
        if kind == "train":
            if rng.random() < 0.03:  # evaluation, checkpoint, data-loader stall
                return float(int(rng.random() * 15))
            return max(0.0, min(100.0, round(_gauss(rng, job.util, job.util_sd))))
        if kind == "serve":
            return max(0.0, min(100.0, round(_gauss(rng, job.util * diurnal(t) / 1.2, job.util_sd))))
        if kind == "notebook":
            return 0.0 if rng.random() < 0.9 else float(5 + int(rng.random() * 55))
        return float(int(rng.random() * 100)) if rng.random() < 0.6 else 0.0

    # -- one sample ------------------------------------------------------------------------------------

    def step(self, t: float, run_t: float) -> dict:
        """Advance to collection time t (in run started at run_t); return the spooled result."""
        rng, dt = self.rng, t - self.last_t
        if t < self.down_until:  # down: nothing runs, nothing counts
            self.last_t = t
            return self._unreachable(run_t, "ssh: connect to host {}: port 22: No route to host")
        if self.down_until > 0:  # back up: it rebooted a little before now
            boot = max(self.crashed_at + 60, min(self.down_until, t) - rng.uniform(60, 200))
            self._boot(boot, boot)
            self.last_t, self.down_until = boot, -1.0
            dt = t - self.last_t
        self._events(t, dt)
        if t < self.down_until:
            self.last_t = t
            return self._unreachable(run_t, "ssh: connect to host {}: port 22: Connection timed out")

        self._end_jobs(t)
        self._arrivals(t, dt)

        busy_cores, io_r, io_w, net = 1.5 + rng.random(), 0.0, 0.0, 0.0
        for job in self.jobs:
            running = t < job.hang_at and job.kind != "notebook"
            busy_cores += job.cpu_cores * len(job.gpus) * (1.0 if running else 0.05)
            if running:
                io_r += job.io_read_bps
                io_w += job.io_write_bps
                net += job.net_bps
        self._accrue(self.last_t, t, busy_cores, (io_r, io_w), net)
        self.load[0] = max(0.0, busy_cores + _gauss(rng, 0, 0.3))
        self.load[1] += (self.load[0] - self.load[1]) * (1 - math.exp(-dt / 300))
        self.load[2] += (self.load[0] - self.load[2]) * (1 - math.exp(-dt / 900))

        gpu_docs = [self._gpu_doc(g, t, dt) for g in self.gpus]
        self.last_t = t
        if t < self.unreachable_until:
            return self._unreachable(run_t, "ssh: connect to host {}: port 22: Connection timed out")
        if rng.random() < TIMEOUT_P * self.fleet.chaos:
            return {"host": self.name, "status": "timeout", "message": "no answer within 30 s",
                    "ts": iso(run_t + 30 + rng.uniform(0, 0.5)), "document": None}
        return self._document(t, gpu_docs)

    def _unreachable(self, run_t: float, message: str) -> dict:
        return {"host": self.name, "status": "unreachable", "message": message.format(self.name),
                "ts": iso(run_t + 10 + self.rng.uniform(0, 0.3)), "document": None}

    def _gpu_doc(self, g: Gpu, t: float, dt: float) -> dict:
        rng = self.rng
        if g.jobs:
            util = min(100.0, sum(self._util(j, t) for j in g.jobs))
            job = g.jobs[0]
            procs = [{"pid": j.pid + j.gpus.index(g.index), "type": "compute",
                      "gpu_mem_bytes": int(g.mem_total * j.mem_frac / len(g.jobs) * rng.uniform(0.995, 1.0)),
                      "user": j.user, "command": j.command, "started_at": iso(j.start), "mig_gi": None,
                      "mig_ci": None} for j in g.jobs]
            mem = sum(p["gpu_mem_bytes"] for p in procs) + 512 * MIB
            power = g.idle_w + 12 + (g.limit * 0.97 - g.idle_w - 12) * (util / 100) ** 0.85 * job.power_factor
            power = min(g.limit, max(g.idle_w, power + _gauss(rng, 0, 4)))
            mem_util = round(util * job.mem_intensity)
        else:
            util, procs, mem, mem_util = 0.0, [], g.idle_mem, 0
            power = g.idle_w + _gauss(rng, 0, 1.5)
        target = self.ambient + power * g.cooling
        g.temp += (target - g.temp) * 0.8 + _gauss(rng, 0, 0.5)
        temp = round(g.temp)
        # energy: the mean of the two readings over the interval, only since the driver loaded
        since = min(dt, t - self.driver_loaded)
        if since > 0:
            g.energy += (g.power + power) / 2 * since * 1000
        g.power = power
        if not procs:
            throttle = ["gpu_idle"]
        elif temp >= 87:
            throttle = ["sw_thermal_slowdown", "hw_thermal_slowdown"]
        elif power >= g.limit * 0.96:
            throttle = ["sw_power_cap"]
        else:
            throttle = []
        mask = 0
        for name in throttle:
            mask |= THROTTLE_BITS[name]
        busy = util > 0
        return {
            **g.static,
            "utilization_gpu_pct": int(util), "utilization_mem_pct": mem_util,
            "utilization_gpu_avg_pct": round(max(0.0, min(100.0, util + _gauss(rng, 0, 2))) if busy else 0.0, 1),
            "utilization_samples": 70, "mem_used_bytes": mem,
            "temperature_c": temp, "temperature_mem_c": temp + 7 if g.has_mem_temp else None,
            "power_w": round(power, 3), "energy_mj": int(g.energy),
            "clock_sm_mhz": (g.sm_max - (345 if throttle and throttle[0] != "gpu_idle" else 0)) if busy else 345,
            "clock_mem_mhz": g.mem_clock, "pstate": 0 if procs else 8,
            "throttle_reasons": throttle, "throttle_mask": mask,
            "ecc_volatile_corrected": 0 if g.ecc else None, "ecc_volatile_uncorrected": g.ecc_volatile,
            "ecc_aggregate_corrected": 0 if g.ecc else None, "ecc_aggregate_uncorrected": g.ecc_aggregate,
            "remapped_rows_correctable": 0 if g.ecc else None, "remapped_rows_uncorrectable": g.remapped,
            "remapped_rows_pending": g.pending, "remapped_rows_failure": False if g.ecc else None,
            "processes": procs,
        }

    def _facts(self) -> dict:
        if self.facts is None:
            driver, cuda = DRIVERS[self.driver]
            self.facts = {
                "hostname": self.name, "fqdn": f"{self.name}.cluster.example", "os": self.os_name,
                "kernel": self.kernels[self.kernel], "arch": "x86_64", "cpu_model": self.cpu_model,
                "cpu_logical": self.cores, "cpu_physical": self.cores // 2, "mem_total_bytes": self.mem_total,
                "boot_time": self.boot_z, "python": self.python, "nvidia_driver": driver, "cuda_version": cuda,
                "nvml_version": f"{cuda.split('.')[0]}.{driver}",
                "gpu_models": [self.gpus[0].name] if self.gpus else [],
            }
        return self.facts

    def _document(self, t: float, gpu_docs: list[dict]) -> dict:
        rng = self.rng
        duration = round(rng.uniform(0.15, 0.45) + 0.03 * len(gpu_docs), 6)
        host_t = t + self.skew
        ts = t + duration + rng.uniform(0.05, 0.3)
        j = self.jiffies
        used = int(14 * GIB + sum(job.rss * len(job.gpus) for job in self.jobs) + rng.uniform(0, GIB))
        cached = int(min(self.mem_total - used, 0.3 * self.mem_total) * 0.8)
        errors, top = [], None
        if t < self.procs_error_until:
            errors.append({"subsystem": "processes", "type": "PermissionError",
                           "message": f"[Errno 13] Permission denied: '/proc/{self.pid}/stat'"})
        else:
            top = []
            for pid, (user, command, cores, rss) in zip(self.sys_pids, SYSTEM_PROCESSES):
                up = t - self.boot
                top.append({"pid": pid, "user": user, "command": command, "cpu_time_s": round(cores * up, 2),
                            "cpu_percent": round(cores * 100, 1), "rss_bytes": rss, "started_at": self.boot_z,
                            "state": "S"})
            for job in self.jobs:
                age = max(1.0, t - job.start)
                share = job.cpu_cores * (1.0 if t < job.hang_at and job.kind != "notebook" else 0.05)
                for i in range(len(job.gpus)):
                    top.append({"pid": job.pid + i, "user": job.user, "command": job.command,
                                "cpu_time_s": round(share * age, 2), "cpu_percent": round(share * 100, 1),
                                "rss_bytes": job.rss, "started_at": job.started_z,
                                "state": "R" if share >= 0.5 else "S"})
            top.sort(key=lambda p: -p["cpu_time_s"])
            del top[15:]
        procs_total = 900 + 40 * len(self.jobs) + int(rng.random() * 30)
        doc = {
            "schema_version": 1,
            "collector_version": "0.1.0",
            "time": {"collected_at": iso_z(host_t), "duration_s": duration},
            "host": self._facts(),
            "cpu": {"logical": self.cores, "jiffies": {k: int(v) for k, v in j.items()}, "user_hz": USER_HZ},
            "load": {"load1": round(self.load[0], 2), "load5": round(self.load[1], 2),
                     "load15": round(self.load[2], 2), "procs_running": max(1, int(self.load[0])),
                     "procs_total": procs_total + 30 * len(self.jobs)},  # threads: a job runs a few dozen
            "memory": {"total_bytes": self.mem_total, "available_bytes": self.mem_total - used,
                       "used_bytes": used, "buffers_bytes": 3 * GIB, "cached_bytes": cached,
                       "swap_total_bytes": 0, "swap_used_bytes": 0},
            "disks": {
                "filesystems": [
                    {"mount": "/", "device": "/dev/nvme0n1p2", "fstype": "ext4", "total_bytes": 1900 * 10**9,
                     "used_bytes": int(self.fs_root_used), "free_bytes": int(1900 * 10**9 - self.fs_root_used),
                     "inodes_total": 118_000_000, "inodes_used": 2_400_000 + int(self.fs_root_used / 2**20)},
                    {"mount": "/scratch", "device": "/dev/nvme1n1", "fstype": "xfs",
                     "total_bytes": self.fs_scratch_total, "used_bytes": int(self.fs_scratch_used),
                     "free_bytes": int(self.fs_scratch_total - self.fs_scratch_used), "inodes_total": 750_000_000,
                     "inodes_used": int(self.fs_scratch_used / 2**22)},
                ],
                "io": [{"device": name, "read_bytes": int(d[0]), "write_bytes": int(d[1]), "reads": int(d[2]),
                        "writes": int(d[3]), "io_time_ms": int(d[4])}
                       for name, d in (("nvme0n1", self.disk[0]), ("nvme1n1", self.disk[1]))],
            },
            "network": {"interfaces": [
                {"name": name, "rx_bytes": int(n[0]), "tx_bytes": int(n[1]), "rx_packets": int(n[2]),
                 "tx_packets": int(n[3]), "rx_errors": 0, "tx_errors": 0, "rx_dropped": 0, "tx_dropped": 0}
                for name, n in (("eth0", self.net[0]), ("ib0", self.net[1]))]},
            "processes": None if top is None else {"total": procs_total, "others_hidden": False, "top": top},
            "gpus": {"available": True, "reason": None, "devices": gpu_docs},
            "errors": errors,
        }
        return {"host": self.name, "status": "ok", "message": "", "ts": iso(ts), "document": doc}


class Fleet:
    """The simulated fleet, or the part of it in `host_indices`; run(k) gives the k-th run's results."""

    def __init__(self, hosts: int = 100, gpus: int = 8, interval_s: float = 300, seed: int = 1,
                 start: datetime = DEFAULT_START, horizon_days: float = 30, host_indices=None, chaos: float = 1.0):
        self.hosts, self.gpus, self.interval_s, self.seed, self.chaos = hosts, gpus, float(interval_s), seed, chaos
        self.start = start
        self.t0 = epoch(start)
        self.users = make_users(seed, hosts, self.t0, horizon_days * DAY)
        self._active_at, self._active = None, []
        indices = range(hosts) if host_indices is None else host_indices
        self.members = [Host(self, i) for i in indices]

    def pick_user(self, rng: random.Random, t: float) -> User | None:
        hour = int(t // 3600)
        if hour != self._active_at:  # who is around this hour (a function of the hour, not of who asks first)
            self._active_at = hour
            self._active = [(u, u.weight) for u in self.users if u.joins <= hour * 3600 < u.leaves]
        return _pick(rng, self._active) if self._active else None

    def run_time(self, k: int) -> float:
        return self.t0 + k * self.interval_s

    def run_id(self, k: int) -> str:
        started = _EPOCH + timedelta(seconds=self.run_time(k))
        return started.strftime("%Y%m%dT%H%M%S%fZ") + "-" + hashlib.sha1(f"{self.seed}/{k}".encode()).hexdigest()[:4]

    def run(self, k: int) -> tuple[str, float, list[dict]]:
        """The k-th run (k = 0, 1, ... in order): its id, start (epoch s) and one spooled result per host."""
        run_t = self.run_time(k)
        results = [h.step(run_t + h.offset, run_t) for h in self.members]
        return self.run_id(k), run_t, results


# -- writing the warehouse directly ------------------------------------------------------------------------

@dataclass
class GenReport:
    data_dir: Path
    hosts: int
    gpus: int
    days: float
    interval_s: float
    start: datetime
    end: datetime
    runs: int = 0
    documents: int = 0  # ok documents
    results: int = 0  # host results of every status
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: float = 0.0
    workers: int = 1
    spooled: list[str] = field(default_factory=list)  # run ids spooled after the period (spool_after)
    spool_seconds: float = 0.0  # the time writing those runs to the spool took


def _runs_by_day(t0: float, interval_s: float, runs: int) -> list[tuple[str, range]]:
    out: list[tuple[str, range]] = []
    k = 0
    while k < runs:
        day = (_EPOCH + timedelta(seconds=t0 + k * interval_s)).date()
        end = k
        while end < runs and (_EPOCH + timedelta(seconds=t0 + end * interval_s)).date() == day:
            end += 1
        out.append((day.isoformat(), range(k, end)))
        k = end
    return out


def _generate_part(data_dir: str, spec: dict, host_indices: list[int], tag: str, threads: int, post) -> dict:
    """Generate the documents of some hosts for the whole period, writing Parquet per table and day."""
    import duckdb

    from fleetscope.warehouse.ingest import write_table
    from fleetscope.warehouse.rows import host_rows

    fleet = Fleet(spec["hosts"], spec["gpus"], spec["interval_s"], spec["seed"], spec["start"], spec["days"],
                  host_indices, spec["chaos"])
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {threads}")
    last_facts: dict[str, str] = {}
    per_run: dict[int, list] = {}
    rows_out: dict[str, int] = defaultdict(int)
    # Millions of short-lived dicts and no reference cycles: the cyclic collector would only rescan them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for day, ks in _runs_by_day(fleet.t0, fleet.interval_s, spec["runs"]):
            tables: dict[str, list[dict]] = defaultdict(list)
            for k in ks:
                run_id, run_t, results = fleet.run(k)
                counts = [0, 0, 0, 0, 0.0]  # ok, unreachable, failed, timeout, last arrival (s after start)
                for result in results:
                    for table, table_rows in host_rows(result, run_id).items():
                        if table == "hosts":
                            table_rows = [r for r in table_rows if last_facts.get(r["host"]) != r["facts_hash"]]
                            for r in table_rows:
                                last_facts[r["host"]] = r["facts_hash"]
                        tables[table].extend(table_rows)
                    counts[("ok", "unreachable", "failed", "timeout").index(result["status"])] += 1
                    counts[4] = max(counts[4], epoch(datetime.fromisoformat(result["ts"])) - run_t)
                per_run[k] = counts
                post(("progress", len(results)))
            for table, table_rows in tables.items():
                rows_out[table] += write_table(con, Path(data_dir), table, f"gen-{day}{tag}", table_rows)
        spooled = [fleet.run(spec["runs"] + i) for i in range(spec["spool_after"])]
    finally:
        con.close()
        if gc_was_enabled:
            gc.enable()
    return {"per_run": per_run, "rows": dict(rows_out), "spooled": spooled}


def _worker(data_dir, spec, host_indices, tag, threads, q) -> None:
    try:
        q.put(("done", tag, _generate_part(data_dir, spec, host_indices, tag, threads, q.put)))
    except BaseException:
        q.put(("error", tag, traceback.format_exc()))


def _merge_parts(data_dir: Path, tables) -> None:
    """Merge the workers' files of each table and day into one gen-<day>.parquet, in run order (run_id first)."""
    import duckdb

    from fleetscope.warehouse.catalog import quote_literal

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        for table in tables:
            for folder in sorted((data_dir / table).glob("date=*")):
                parts = sorted(folder.glob("gen-*-p*.parquet"))
                if not parts:
                    continue
                dest = folder / f"gen-{folder.name[5:]}.parquet"
                tmp = folder / f".{dest.name}.tmp"
                files = "[" + ", ".join(quote_literal(str(p)) for p in parts) + "]"
                con.execute(f"COPY (SELECT * FROM read_parquet({files}) ORDER BY ALL) "
                            f"TO {quote_literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
                os.replace(tmp, dest)
                for p in parts:
                    p.unlink()
    finally:
        con.close()


def generate(data_dir: Path, hosts: int = 100, gpus: int = 8, days: float = 30, interval_s: float = 300,
             seed: int = 1, start: datetime = DEFAULT_START, progress=None, workers: int | None = None,
             spool_after: int = 0, chaos: float = 1.0) -> GenReport:
    """Write `days` of the fleet's runs straight into the warehouse Parquet under data_dir.

    Each document goes through the warehouse's own host_rows (so each is validated as ingest would), the rows
    are written with ingest's write_table: one file per table and day (gen-<day>.parquet), a `runs` row per
    run, `hosts` rows only when a host's facts change. `workers` processes (default: one per CPU) each take
    a share of the hosts; their files are merged per day at the end. `spool_after` > 0 then spools that
    many further runs of the same fleet (continuing its state) as real runs for `ingest_pending`.
    `progress(done, total)` is called with host results done so far.
    """
    import duckdb

    from fleetscope import __version__
    from fleetscope.warehouse.catalog import refresh_catalog_file
    from fleetscope.warehouse.ingest import write_table

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    runs = math.ceil(days * DAY / interval_s)
    workers = max(1, min(workers or os.cpu_count() or 1, hosts))
    spec = {"hosts": hosts, "gpus": gpus, "interval_s": interval_s, "seed": seed, "start": start, "days": days,
            "runs": runs, "spool_after": spool_after, "chaos": chaos}
    report = GenReport(data_dir, hosts, gpus, days, interval_s, start,
                       start + timedelta(seconds=runs * interval_s), runs=runs, workers=workers)
    total, done = runs * hosts, 0
    started = time.perf_counter()
    parts = [list(range(hosts))[i::workers] for i in range(workers)]

    def post(message):
        nonlocal done
        done += message[1]
        if progress:
            progress(done, total)

    if workers == 1:
        outputs = [_generate_part(str(data_dir), spec, parts[0], "", 0, post)]
    else:
        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(str(data_dir), spec, part, f"-p{i}", 1, q), daemon=True)
                 for i, part in enumerate(parts)]
        for p in procs:
            p.start()
        results: dict[str, dict] = {}
        try:
            while len(results) < workers:
                try:
                    message = q.get(timeout=1.0)
                except queue.Empty:
                    dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                    if dead:
                        raise RuntimeError(f"a generator worker died (exit code {dead[0]})") from None
                    continue
                if message[0] == "progress":
                    post(message)
                elif message[0] == "error":
                    raise RuntimeError(f"generator worker {message[1]} failed:\n{message[2]}")
                else:
                    results[message[1]] = message[2]
        finally:
            for p in procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.terminate()
        outputs = [results[f"-p{i}"] for i in range(workers)]
        _merge_parts(data_dir, {t for out in outputs for t in out["rows"]})

    fleet = Fleet(hosts, gpus, interval_s, seed, start, days, host_indices=[], chaos=chaos)
    runs_by_day: dict[str, list[dict]] = defaultdict(list)
    for k in range(runs):
        counts = [0, 0, 0, 0, 0.0]
        for out in outputs:
            c = out["per_run"][k]
            counts = [a + b for a, b in zip(counts[:4], c[:4])] + [max(counts[4], c[4])]
        run_t = fleet.run_time(k)
        row = {"run_id": fleet.run_id(k), "ts": iso(run_t), "started_at": iso(run_t),
               "finished_at": iso(run_t + counts[4] + 0.5), "inventory": "inventory.ini",
               "hosts_total": sum(counts[:4]), "hosts_ok": counts[0], "hosts_unreachable": counts[1],
               "hosts_failed": counts[2], "hosts_timeout": counts[3], "fleetscope_version": __version__}
        runs_by_day[row["ts"][:10]].append(row)
        for status, n in zip(("ok", "unreachable", "failed", "timeout"), counts[:4]):
            report.statuses[status] += n
    con = duckdb.connect()
    try:
        for day, rows in runs_by_day.items():
            report.rows["runs"] += write_table(con, data_dir, "runs", f"gen-{day}", rows)
    finally:
        con.close()
    for out in outputs:
        for table, n in out["rows"].items():
            report.rows[table] += n
    report.results = sum(report.statuses.values())
    report.documents = report.statuses["ok"]
    if spool_after:
        merged = []
        for i in range(spool_after):
            pieces = [out["spooled"][i] for out in outputs]
            results = sorted((r for _, _, rs in pieces for r in rs), key=lambda r: r["host"])
            merged.append((pieces[0][0], pieces[0][1], results))
        t = time.perf_counter()
        report.spooled = _spool(data_dir, merged)
        report.spool_seconds = time.perf_counter() - t
    refresh_catalog_file(data_dir)
    report.seconds = time.perf_counter() - started
    return report


# -- real spooled runs ---------------------------------------------------------------------------------------

def _spool(data_dir: Path, runs) -> list[str]:
    """Spool (run_id, start, results) runs exactly as `fleetscope collect` writes them."""
    from fleetscope import __version__
    from fleetscope.spool import Spool

    spool = Spool(Path(data_dir))
    ids = []
    for run_id, run_t, results in runs:
        hosts = [r["host"] for r in results]
        meta = {"run_id": run_id, "started_at": iso(run_t), "finished_at": None, "inventory": "inventory.ini",
                "hosts": hosts, "runner_status": None, "fleetscope_version": __version__}
        spool.start_run(run_id, meta)
        for result in results:
            spool.put(run_id, result)
        last = max(epoch(datetime.fromisoformat(r["ts"])) for r in results) if results else run_t
        spool.finish_run(run_id, meta | {"finished_at": iso(last + 0.5), "runner_status": "successful"})
        ids.append(run_id)
    return ids


def spool_runs(data_dir: Path, runs: int = 12, hosts: int = 100, gpus: int = 8, interval_s: float = 300,
               seed: int = 1, start: datetime = DEFAULT_START, chaos: float = 1.0) -> list[str]:
    """Spool the fleet's first `runs` runs as real runs (fleetscope.spool); returns their ids, oldest first."""
    fleet = Fleet(hosts, gpus, interval_s, seed, start, max(1.0, runs * interval_s / DAY), chaos=chaos)
    return _spool(Path(data_dir), (fleet.run(k) for k in range(runs)))


def tty_progress(label: str, stream=None):
    """A progress(done, total) callback that redraws one line on a terminal and stays silent otherwise."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None
    started, last = time.perf_counter(), [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] < 0.5 and done < total:
            return
        last[0] = now
        rate = done / max(now - started, 1e-9)
        eta = (total - done) / rate if rate else 0
        stream.write(f"\r{label}: {done:,}/{total:,} ({100 * done / max(total, 1):.0f} %), "
                     f"{rate:,.0f}/s, {eta:.0f} s left   ")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return progress
