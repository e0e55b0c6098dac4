#!/usr/bin/python
# fleetscope: admin actions on a host, each refusing to act on anything but what the report showed.

DOCUMENTATION = r"""
---
module: fleetscope_admin
short_description: Terminate a process, put GPUs in maintenance, or set a GPU power limit
description:
  - C(kill) sends a signal to a process, but only if it still runs as the user and command the report
    showed (the command compared as the collector redacts it), and, given I(expect_started), started when
    the report said: a recycled pid is not hit, even by a job restarted with the same command.
  - C(maintenance) sets the NVIDIA compute mode to prohibited (on) or default (off) on one or all GPUs.
  - C(power_limit) sets a GPU's power limit in watts (NVML takes milliwatts), within the constraints the GPU
    reports; a value outside them is refused and nothing is changed.
  - Setting a value the GPU already has changes nothing and reports C(changed=false).
  - Supports check mode (C(--check)) for every action. Acting on other users' processes and on GPUs needs
    root (C(become)).
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [kill, maintenance, power_limit]
  pid:
    description: The process to signal (kill).
    type: int
  expect_user:
    description: The user the process must still run as (kill).
    type: str
  expect_command:
    description: The command line the process must still have, as the report shows it (kill).
    type: str
  expect_started:
    description: When the process must have started, UTC, as the report shows it (C(2026-11-23 09:00),
      seconds optional); within a minute (kill).
    type: str
  signal:
    description: The signal to send first (kill).
    type: str
    default: TERM
    choices: [TERM, INT, KILL]
  wait:
    description: Seconds to wait for the process to end (kill); past them the module fails unless I(force).
    type: int
    default: 10
  force:
    description: Send KILL if the process is still there after I(wait) seconds (kill).
    type: bool
    default: false
  gpu:
    description: GPU index (maintenance, power_limit); omitted for maintenance means every GPU.
    type: int
  state:
    description: C(on) to start maintenance, C(off) to end it (maintenance).
    type: str
    choices: ["on", "off"]
  watts:
    description: The power limit to set, in watts (power_limit); rounded to the milliwatt NVML counts in.
    type: float
author:
  - fleetscope
"""

EXAMPLES = r"""
- name: Terminate a runaway job, if it is still the one the report showed
  fleetscope_admin:
    action: kill
    pid: 4242
    expect_user: alice
    expect_command: python train.py --epochs 100
"""

RETURN = r"""
message:
  description: What was done (or, in check mode, what would be done).
  returned: always
  type: str
gpus:
  description: The GPUs whose compute mode was (or, in check mode, would be) changed (maintenance).
  returned: maintenance
  type: list
  elements: int
milliwatts:
  description: The power limit asked for, in milliwatts as NVML takes it (power_limit).
  returned: power_limit, when within the GPU's constraints
  type: int
"""

import math  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.fleetscope_collectors._util import (  # noqa: E402
    owners_and_commands,
    shown_utc_span,
    stuck_reads,
)
from ansible.module_utils.fleetscope_collectors.gpus import driver_present, load_pynvml  # noqa: E402


def _start_ticks(pid):
    """The process's start, in clock ticks after boot (/proc/<pid>/stat field 22); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[-1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _started_at(ticks):
    """POSIX seconds of a start in ticks after boot."""
    from ansible.module_utils.fleetscope_collectors._util import boot_time, user_hz

    return boot_time() + ticks / user_hz()


def _pidfd(pid):
    """A handle on the process itself (Linux 5.3+, Python 3.9+): a signal sent through it cannot reach
    another process that took the pid meanwhile. None where there is none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _send(pid, pidfd, number):
    if pidfd is not None:
        signal.pidfd_send_signal(pidfd, number)
    else:
        os.kill(pid, number)


def kill(module):
    p = module.params
    pid = p["pid"]
    if not pid or pid <= 1:
        module.fail_json(msg="kill needs a pid above 1")
    pidfd = _pidfd(pid)  # first: what is checked below is then the process signalled
    ticks = _start_ticks(pid)
    # its command line through the collector's reader: a process stuck in the kernel, the one an admin may
    # well want ended, would hold a plain read (and this task) until its time limit
    user, command = owners_and_commands([pid]).get(pid, (None, None))
    if user is None or ticks is None or ticks != _start_ticks(pid):
        module.exit_json(changed=False, message=f"pid {pid} is not running any more: nothing to do")
    if stuck_reads and p["expect_command"] is not None:
        module.fail_json(msg=f"refusing: the command line of pid {pid} ({user}) could not be read (a process stuck "
                         f"in the kernel?), so it cannot be checked against the command given; it may not end "
                         f"until the kernel lets it go, whatever the signal")
    if (p["expect_user"] is not None and user != p["expect_user"]) or (
            p["expect_command"] is not None and command != p["expect_command"]):
        module.fail_json(msg=f"refusing: pid {pid} now runs {command!r} as {user}, not {p['expect_command']!r} as "
                         f"{p['expect_user']} (the report is out of date or the pid was reused)")
    if p["expect_started"]:
        try:
            earliest, latest = shown_utc_span(p["expect_started"])
        except ValueError as e:
            module.fail_json(msg=str(e))
        started = _started_at(ticks)
        if not earliest <= started <= latest:
            import datetime

            when = datetime.datetime.fromtimestamp(started, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            module.fail_json(msg=f"refusing: pid {pid} started at {when} UTC, not {p['expect_started']}: another "
                             f"process with the same user and command (the pid was reused)")
    what = f"SIG{p['signal']} to pid {pid} ({user}, {command!r})"
    if module.check_mode:
        module.exit_json(changed=True, message="would send " + what)
    try:
        if pidfd is None and _start_ticks(pid) != ticks:  # without a handle: the pid checked once more
            raise ProcessLookupError
        _send(pid, pidfd, getattr(signal, "SIG" + p["signal"]))
    except ProcessLookupError:
        module.exit_json(changed=False, message=f"pid {pid} ended by itself")
    except PermissionError:
        module.fail_json(msg=f"not allowed to signal pid {pid} (run as {user}): this action needs become")
    deadline = time.monotonic() + p["wait"]
    while time.monotonic() < deadline:
        if _gone(pid):
            module.exit_json(changed=True, message="sent " + what + "; it ended")
        time.sleep(0.1)
    if p["force"] and not _gone(pid):
        if _start_ticks(pid) != ticks:  # ended, and the pid taken by another process meanwhile
            module.exit_json(changed=True, message="sent " + what + "; it ended (its pid is another process's "
                             "now: no SIGKILL)")
        try:
            _send(pid, pidfd, signal.SIGKILL)
        except ProcessLookupError:
            module.exit_json(changed=True, message="sent " + what + "; it ended")
        time.sleep(0.2)
        module.exit_json(changed=True, message="sent " + what + f", then SIGKILL after {p['wait']} s")
    module.fail_json(msg="sent " + what + f", but it is still running after {p['wait']} s "
                         "(add --force to send SIGKILL)",
                     changed=True)  # the signal was delivered: that is a change, whatever came of it


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"  # a zombie has ended; its parent reaps it
    except OSError:
        return True


def _nvml(module):
    if not driver_present():
        module.fail_json(msg="no NVIDIA driver loaded on this host")
    nvml = load_pynvml()
    if nvml is None:
        module.fail_json(msg="pynvml is not available on this host")
    try:
        nvml.nvmlInit()
    except Exception as e:
        module.fail_json(msg=f"NVML would not start: {e}")
    return nvml


def _gpu_indexes(module, nvml):
    """The GPUs asked for (one, or every one), failing clearly on an index the host does not have."""
    count = nvml.nvmlDeviceGetCount()
    gpu = module.params["gpu"]
    if gpu is None:
        return list(range(count))
    if not 0 <= gpu < count:
        have = f"GPU 0-{count - 1}" if count > 1 else "only GPU 0" if count == 1 else "no GPU"
        module.fail_json(msg=f"no GPU {gpu} on this host (it has {have}): nothing changed")
    return [gpu]


def _why(nvml, e):
    """An NVML error as a reason; a missing permission says what it takes."""
    if getattr(e, "value", None) == nvml.NVML_ERROR_NO_PERMISSION:
        return f"not permitted ({e}): this action needs root on the host (become)"
    return str(e) or type(e).__name__


def _watts(milliwatts):
    return f"{milliwatts / 1000:g} W"


def maintenance(module):
    p = module.params
    if p["state"] not in ("on", "off"):
        module.fail_json(msg="maintenance needs state on or off")
    nvml = _nvml(module)
    mode = "prohibited" if p["state"] == "on" else "default"
    verb = "would set" if module.check_mode else "set"
    done = []
    try:
        target = nvml.NVML_COMPUTEMODE_PROHIBITED if p["state"] == "on" else nvml.NVML_COMPUTEMODE_DEFAULT
        indexes = _gpu_indexes(module, nvml)
        for i in indexes:
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            if nvml.nvmlDeviceGetComputeMode(handle) != target:
                if not module.check_mode:
                    nvml.nvmlDeviceSetComputeMode(handle, target)
                done.append(i)
        already = [i for i in indexes if i not in done]
        if done:
            message = "{} compute mode {} on GPU {}".format(verb, mode, ", ".join(map(str, done)))
            if already:
                message += "; GPU {} already {}".format(", ".join(map(str, already)), mode)
        else:
            message = "GPU {} compute mode already {}: nothing to do".format(", ".join(map(str, indexes)), mode)
        module.exit_json(changed=bool(done), message=message, gpus=done)
    except Exception as e:
        before = "; compute mode {} already set on GPU {}".format(mode, ", ".join(map(str, done))) if done else ""
        module.fail_json(msg=f"maintenance {p['state']} failed: {_why(nvml, e)}{before}", changed=bool(done),
                         gpus=done)
    finally:
        nvml.nvmlShutdown()


def power_limit(module):
    p = module.params
    if p["gpu"] is None or p["watts"] is None:
        module.fail_json(msg="power_limit needs gpu and watts")
    if not math.isfinite(p["watts"]) or p["watts"] <= 0:
        module.fail_json(msg=f"power limit must be a positive number of watts, not {p['watts']}")
    nvml = _nvml(module)
    try:
        gpu = _gpu_indexes(module, nvml)[0]
        handle = nvml.nvmlDeviceGetHandleByIndex(gpu)
        low, high = nvml.nvmlDeviceGetPowerManagementLimitConstraints(handle)
        milliwatts = int(round(p["watts"] * 1000))  # NVML counts milliwatts
        if not low <= milliwatts <= high:
            module.fail_json(msg=f"refusing: GPU {gpu} accepts {_watts(low)} to {_watts(high)}, not "
                                 f"{_watts(milliwatts)}: nothing changed")
        current = nvml.nvmlDeviceGetPowerManagementLimit(handle)
        if current == milliwatts:
            module.exit_json(changed=False, milliwatts=milliwatts,
                             message=f"GPU {gpu} power limit already {_watts(milliwatts)}: nothing to do")
        if not module.check_mode:
            nvml.nvmlDeviceSetPowerManagementLimit(handle, milliwatts)
        verb = "would set" if module.check_mode else "set"
        module.exit_json(changed=True, milliwatts=milliwatts,
                         message=f"{verb} GPU {gpu} power limit {_watts(current)} -> {_watts(milliwatts)}")
    except Exception as e:
        module.fail_json(msg=f"power limit failed: {_why(nvml, e)}")
    finally:
        nvml.nvmlShutdown()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", required=True, choices=["kill", "maintenance", "power_limit"]),
            pid=dict(type="int"),
            expect_user=dict(type="str"),
            expect_command=dict(type="str"),
            expect_started=dict(type="str"),
            signal=dict(type="str", default="TERM", choices=["TERM", "INT", "KILL"]),
            wait=dict(type="int", default=10),
            force=dict(type="bool", default=False),
            gpu=dict(type="int"),
            state=dict(type="str", choices=["on", "off"]),
            watts=dict(type="float"),
        ),
        supports_check_mode=True,
    )
    {"kill": kill, "maintenance": maintenance, "power_limit": power_limit}[module.params["action"]](module)


if __name__ == "__main__":
    main()
