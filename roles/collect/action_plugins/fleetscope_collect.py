# fleetscope: the fleetscope_collect action, which runs the collector on a host.
#
# Why an action and not a plain module: every Ansible module reaches the host as AnsiballZ, which imports
# ansible.module_utils.basic from a zip on every run; even `ping` costs a host ~260 ms of CPU that way. This
# action does what pipelining does, without the wrapper: one `python3 -c <a one-line stub>` over the
# existing connection, then ../files/bootstrap.py and the collector package written to its stdin; the
# package is imported from memory. Nothing is written to the host. The result has the module's shape
# (library/fleetscope_collect.py documents it).
from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import time
from pathlib import Path

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

try:  # ansible-core 2.19+: what a task's `timeout` raises, so that the bound below reports as one does
    from ansible._internal._errors._task_timeout import TaskTimeoutError
except ImportError:  # older: the action's own alarm (_Bound), reported in the same shape
    TaskTimeoutError = None
try:  # a role variable set to "{{ omit }}" leaves its argument to the default, as it did in the task
    from ansible.errors import AnsibleValueOmittedError
except ImportError:  # older Ansible: omit is a placeholder string there, which the argument spec rejects
    AnsibleValueOmittedError = None

# Imported when Ansible loads this plugin in its main process (the strategy looks the action up there), so
# every forked worker has it already: imported in run(), each of them paid ~10 ms of CPU.
from fleetscope.ssh_warmup import (
    OPENED_ENV,
    RECORDS_ENV,
    control_path,
    end_master,
    is_command,
    option,
    read_record,
    record,
    usable,
    wait,
)
from fleetscope.stage import STUB, collector_bundle, for_magic, host_file, payload

# The role's variables feed these where the task leaves them out, as the role's task does: the action reads
# them itself (_role_arguments), so that the task holds no Jinja. Ansible compiles every template of a task
# afresh in every host's worker, nothing of it inherited from the process that forks them: the task's four
# templates were 9 ms of controller CPU per host, 35 % of its worker (docs/scaling.md). They are checked here,
# once per host with the task, not by a role argument spec: Ansible runs that as a task of its own on every
# host, which cost 0.03 s per host on the controller (a quarter of a 32-host run on 2 cores).
ROLE_VARIABLES = {"top_n": "collect_top_n", "timeout": "collect_host_timeout",
                  "accounting_since": "collect_accounting_since"}
#: Seconds a host's task may run past the collector's own timeout, where no task timeout applies: the bound
#: for a host that stops answering altogether (the collector stops itself at `timeout`).
TASK_MARGIN_S = 15
#: How Ansible's ssh connection begins the failure it raises where the pipe to ssh broke (Action._send).
DATA_NOT_SENT = "Data could not be sent to remote host"
#: How it ends when ssh had said nothing yet, lower-cased: ansible-core 2.19 raises "... over SSH." from the
#: BrokenPipeError, and its str() then ends "over SSH: [Errno 32] Broken pipe" (the cause's words); before
#: 2.19, "over ssh: [Errno 32] Broken pipe". Unlike the failure that carries ssh's own words ("... over ssh:
#: Host key verification failed."), which is not sent again.
SSH_SAID_NOTHING = ("over ssh.", "over ssh: [errno 32] broken pipe")
#: The longest `timeout` (SIGALRM's limit, less the margin).
MAX_TIMEOUT_S = 100_000_000 - TASK_MARGIN_S
ARGUMENT_SPEC = {
    "top_n": {"type": "int", "default": 15},
    "timeout": {"type": "int", "default": 30},
    "accounting_since": {"type": "str", "default": ""},
    "only": {"type": "list", "elements": "str"},
    # look for the host's interpreter afresh where an earlier run remembered one (`fleetscope hosts check`)
    "discover": {"type": "bool", "default": False},
}


#: How long a host's task waits for `fleetscope collect` to write the hints folder (it does so within a second
#: of starting Ansible, which takes about that long to reach the first host). Well inside the TASK_MARGIN_S
#: the task's bound allows on top of the collector's own timeout.
HINTS_WAIT_S = 8


class _Bound:
    """SIGALRM after `seconds`, raising _Bound.Reached: the task's bound on an Ansible without its own
    (before 2.19)."""

    class Reached(BaseException):  # not an Exception: nothing on the way out may swallow it
        pass

    def __init__(self, seconds: int):
        self.seconds = seconds

    def __enter__(self):
        def reached(_signum, _frame):
            raise _Bound.Reached()

        self._previous = signal.signal(signal.SIGALRM, reached)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self._previous)


def _hints(host: str) -> dict:
    """This host's hints in the folder `fleetscope collect` names in FLEETSCOPE_HINTS, which it writes while
    Ansible starts, so that its warehouse lookup is not on the run's critical path: {"accounting_since":
    time, "python_magic": hex}, each there when known. {} without the folder, for a host it has no file for
    (a new one), or when the folder has not come within HINTS_WAIT_S (a playbook run by hand)."""
    folder = os.environ.get("FLEETSCOPE_HINTS")
    if not folder:
        return {}
    deadline = time.monotonic() + HINTS_WAIT_S
    while not os.path.isdir(folder):  # renamed into place whole
        if time.monotonic() > deadline:
            return {}  # as when the warehouse cannot be read: records of the last run may come again
        time.sleep(0.01)
    try:
        with open(host_file(folder, host), encoding="utf-8") as f:
            hints = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(hints, dict):
        return {}
    out = {k: v for k, v in hints.items() if isinstance(v, str)}
    if is_command(hints.get("ssh")):
        out["ssh"] = hints["ssh"]
    return out


def _option(connection, name):
    """A connection option, None where this Ansible's plugin has no such option."""
    try:
        return connection.get_option(name)
    except KeyError:
        return None


def _ssh_command(connection) -> list[str] | None:
    """The `ssh` command line Ansible's ssh connection builds for this host's commands, up to and with the
    host's address; None for other connections and for those ssh_warmup leaves alone: a password (sshpass
    or askpass), a private key given as data (a file in this run's temporary folder), no ControlPersist."""
    try:
        from ansible.plugins.connection.ssh import Connection as Ssh

        if not isinstance(connection, Ssh):
            return None
        if (_option(connection, "password") or getattr(connection._play_context, "password", None)
                or _option(connection, "private_key") or _option(connection, "pkcs11_provider")):
            return None
        connection.host = _option(connection, "host") or connection._play_context.remote_addr  # as exec_command
        argv = connection._build_command(connection.get_option("ssh_executable"), "ssh", connection.host)
        argv = [os.fsdecode(a) for a in argv]
        return argv if usable(argv) else None
    except Exception:  # noqa: BLE001 - another Ansible's internals: the host is then only not opened early
        return None


def _bundle(magic: str | None) -> bytes:
    """The collector package as `fleetscope collect` staged it for this run, else built now; with only the
    bytecode for `magic` (the host's Python, as its last answer told) when that is known."""
    staged = os.environ.get("FLEETSCOPE_BUNDLE")
    bundle = None
    if staged:
        try:
            bundle = Path(staged).read_bytes()
        except FileNotFoundError:  # removed under a run of over a day: built again, from the same sources
            pass
    if bundle is None:
        bundle = collector_bundle()  # a playbook run by hand, from the project's venv
    try:
        return for_magic(bundle, bytes.fromhex(magic) if magic else None)
    except ValueError:
        return bundle


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True  # it only reads
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        try:
            given = self._task.args or {}
            self._task.args = {**self._role_arguments(task_vars, given), **given}
            _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
            if not 0 <= args["timeout"] <= MAX_TIMEOUT_S:  # 0: the collector has no timeout; the task has its bound
                raise AnsibleActionFail(f"argument 'timeout' is {args['timeout']}: it must be 0 to {MAX_TIMEOUT_S}")
        except AnsibleActionFail as e:
            result.update(failed=True, msg=_name_role_variables(str(getattr(e, "message", e))))
            return result
        seconds = args["timeout"] + TASK_MARGIN_S
        try:
            with self._bounded(seconds):
                return self._collect(result, args, task_vars)
        except _Bound.Reached:
            _end_commands()
            result.update(failed=True, timedout={"period": seconds},
                          msg=f"The fleetscope_collect action did not finish within {seconds} seconds")
            return result
        except BaseException:  # Ansible's task timeout, or anything else: the task's command ends with it
            _end_commands()
            raise

    def _role_arguments(self, task_vars, given) -> dict:
        """The role variables of the arguments the task leaves out, as Ansible would have templated them into
        the task."""
        out = {}
        for arg, var in ROLE_VARIABLES.items():
            if arg in given or var not in task_vars:
                continue
            try:
                out[arg] = self._templar.template(task_vars[var])
            except Exception as e:  # noqa: BLE001 - an undefined or broken template: say which variable
                if AnsibleValueOmittedError is not None and isinstance(e, AnsibleValueOmittedError):
                    continue  # "{{ omit }}": the argument's default
                raise AnsibleActionFail(f"argument '{arg}' could not be templated: {e}") from e
        return out

    def _bounded(self, seconds: int):
        """A bound of `seconds` on the task, where no task timeout applies (the role's task and
        playbooks/check.yml set none: a task keyword would be a template, see ROLE_VARIABLES; `fleetscope
        collect` and `hosts check` turn Ansible's task_timeout setting off, collect.runner_env): Ansible's
        own task timeout where this Ansible has it, reported as a task's timeout is (timedout), else _Bound."""
        if self._task.timeout:
            return contextlib.nullcontext()
        if TaskTimeoutError is not None and hasattr(TaskTimeoutError, "alarm_timeout"):
            return TaskTimeoutError.alarm_timeout(seconds)
        return _Bound(seconds)

    def _collect(self, result, args, task_vars):
        host = task_vars.get("inventory_hostname", "")
        hints = _hints(host)
        self._warm_connection(host, hints.get("ssh"))
        # GPU accounting records that ended before the host's last stored sample are stored already; "" asks
        # for every record the driver still holds (a new host, or a playbook run by hand)
        args["accounting_since"] = args["accounting_since"] or hints.get("accounting_since", "")
        python, facts, remembered = self._python(task_vars, fresh=args.pop("discover"))
        stdin = payload(args, _bundle(hints.get("python_magic")))
        # on this machine (a local connection) the worker's own end stops the command (Ansible's worker ends
        # its process group, which `timeout` would leave); on a host, nothing else would
        local = getattr(self._connection, "transport", "") in ("local", "ansible.builtin.local")
        bound = None if local else self._task.timeout or args["timeout"] + TASK_MARGIN_S
        res = self._execute(python, bound, stdin)
        if remembered and res.get("rc") == 127 and not res.get("stdout", "").strip():
            # the interpreter an earlier run found did not start (gone, or broken): look again
            python, facts = self._discover(task_vars, remembered)
            res = self._execute(python, bound, stdin)
        if facts:
            result["ansible_facts"] = facts
        result.update(_answer(python, res))
        result["invocation"] = {"module_args": args}  # as a module reports them (shown with -v)
        return result

    def _execute(self, python: str, bound: int | None, stdin: bytes) -> dict:
        """The collector's command on the host (host_command), as the connection answers it."""
        res = self._send(host_command(python, bound), stdin)
        if bound is not None and res.get("rc") in (125, 126, 127) and not res.get("stdout", "").strip():
            # the host's `timeout` could not run it: one of another syntax (BusyBox before 1.30), or no such
            # interpreter (said again, as the plain command says it)
            res = self._send(host_command(python, None), stdin)
        return res

    def _send(self, command: str, stdin: bytes) -> dict:
        """`command` with `stdin`, once more where ssh stopped reading its stdin before it had said why: Ansible
        then checks the ssh process 1 ms after the broken pipe and, with ssh not yet gone, reports only that
        the data could not be sent, without ssh's reason ("Host key verification failed", "Permission
        denied"). Before the second try, a command with nothing on stdin (`exit 0`): Ansible then writes
        nothing, waits for ssh to end and raises with ssh's own words where it cannot connect (a second try
        with the data raced the same way on a loaded machine, CI 2026-11-28). Where it connects, the
        command is sent again. The collector only reads, so a host that did run the first try's command
        comes to no harm from the second."""
        try:
            return self._low_level_execute_command(command, in_data=stdin)
        except AnsibleConnectionFailure as e:
            said = str(e).lower()
            if not str(e).startswith(DATA_NOT_SENT) or not (
                    isinstance(e.__cause__, BrokenPipeError) or any(end in said for end in SSH_SAID_NOTHING)):
                raise
            Display().vvv(f"{e}: asking ssh why, with nothing to send")
        self._low_level_execute_command("exit 0")
        return self._low_level_execute_command(command, in_data=stdin)

    def _warm_connection(self, host: str, opened_with: list[str] | None) -> None:
        """fleetscope opens the run's first connections while Ansible starts (fleetscope/ssh_warmup.py):
        wait for this host's opening, end its master where Ansible's command line differs from the one it
        was opened with, and record Ansible's command line for the next run. Raises the connection failure
        where the opening, with Ansible's own command line and BatchMode, could not connect."""
        records = os.environ.get(RECORDS_ENV)
        if not records:
            return
        argv = _ssh_command(self._connection)
        opened = os.environ.get(OPENED_ENV)
        if opened_with is not None and opened and (path := control_path(opened_with)):
            limit = int(_option(self._connection, "timeout") or 10) + 5
            if argv == opened_with:
                error = wait(opened, host, path, limit)
                if (error is not None and (option(argv, "batchmode") or "").lower() == "yes"
                        and not _option(self._connection, "reconnection_retries")):
                    # as Ansible's ssh connection reports it; where told to retry, it retries itself
                    raise AnsibleConnectionFailure(f"Failed to connect to the host via ssh: {error}")
            elif argv is None or control_path(argv) == path:
                # Ansible would find that master at its ControlPath: once it is up, stop it
                wait(opened, host, path, limit)
                end_master(_option(self._connection, "ssh_executable") or "ssh", path)
        if argv is not None and argv != (opened_with or read_record(records, host)):
            record(records, host, argv)

    def _python(self, task_vars, fresh=False):
        """(interpreter, facts to remember, discovery mode if the interpreter is one an earlier run
        discovered): ansible_python_interpreter as Ansible resolves it for modules, discovery included;
        `python3` where this Ansible's internals differ. `fleetscope collect` keeps Ansible's fact cache
        between runs, so a host's interpreter is discovered once a day, not on every run (one SSH command
        less per host and run); `fresh` looks again all the same."""
        try:
            from ansible.executor.interpreter_discovery import InterpreterDiscoveryRequiredError
            from ansible.executor.module_common import _get_shebang
        except ImportError:
            return "python3", None, None
        remote_is_local = bool(getattr(self._connection, "_remote_is_local", False))
        fact = "discovered_interpreter_python"
        facts = task_vars.get("ansible_facts") or {}
        # resolved without the discovered fact: an interpreter set in the inventory or ansible.cfg wins as it is
        settings = dict(task_vars, ansible_facts={k: v for k, v in facts.items() if k != fact})
        try:
            python = _get_shebang("/usr/bin/python", settings, self._templar, remote_is_local=remote_is_local)[1]
            return python, None, None
        except InterpreterDiscoveryRequiredError as e:
            known = facts.get(fact)
            if known and not fresh:
                return known, None, e.discovery_mode
            return (*self._discover(task_vars, e.discovery_mode), None)

    def _discover(self, task_vars, mode):
        """(the host's interpreter as Ansible's discovery finds it, the fact that remembers it)."""
        from ansible.executor.interpreter_discovery import discover_interpreter

        found = discover_interpreter(action=self, interpreter_name="python", discovery_mode=mode, task_vars=task_vars)
        return found, {"discovered_interpreter_python": found}


def host_command(python: str, seconds: int | None) -> str:
    """The command a host runs: `python -c STUB`, under the host's `timeout` (coreutils, busybox) where it has
    one, which ends it by SIGTERM once the task's bound of `seconds` has passed. The collector stops itself
    at its own timeout, and the controller stops waiting at the bound; but an interpreter that hangs before
    the collector starts (a wrapper script waiting on a dead network filesystem or licence server) notices
    neither the closed connection nor anything else: without this it would stay on the host, one more
    every run. ``seconds`` None: the command alone."""
    run = f"{python} -c {shlex.quote(STUB)}"
    if seconds is None or "=" in python.split(None, 1)[0]:  # "VAR=value python3": the shell's, not timeout's
        return run
    return f"if command -v timeout >/dev/null 2>&1; then exec timeout {int(seconds)} {run}; fi; exec {run}"


def _end_commands() -> None:
    """SIGKILL this worker's descendants: the command the task's bound stopped waiting for (its `ssh`, or with
    a local connection the shell and the interpreter under it), which Ansible's connection leaves running when
    the wait is cut short: each hung host left one per run. (Linux /proc; elsewhere nothing.)"""
    children = {}
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            ppid = int(stat[stat.rfind(b")") + 2:].split()[1])  # after the command's name: state, ppid
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        children.setdefault(ppid, []).append(int(pid))
    found, todo = [], list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _name_role_variables(message: str) -> str:
    """Validation errors name the role variable a bad argument came from."""
    for arg, var in ROLE_VARIABLES.items():
        message = message.replace(f"argument '{arg}'", f"argument '{arg}' (role variable {var})")
    return message


def _json_lines(stdout: str):
    """(the JSON object in ``stdout``, the lines around it): all of it, or, much as Ansible takes a module's
    output, the object that starts the first line beginning with ``{``, whatever precedes or follows it (a
    login script or an interpreter wrapper that prints a line of its own costs the host nothing). (None, [])
    if there is none."""
    try:
        return json.loads(stdout), []
    except ValueError:
        pass
    offset = 0
    for line in stdout.splitlines(keepends=True):
        if line.lstrip().startswith("{"):
            start = offset + len(line) - len(line.lstrip())
            try:
                answer, end = json.JSONDecoder().raw_decode(stdout, start)
            except ValueError:
                return None, []
            around = stdout[:start].splitlines() + stdout[end:].splitlines()
            return answer, [text.strip() for text in around if text.strip()]
        offset += len(line)
    return None, []


def _answer(python: str, res: dict) -> dict:
    """The bootstrap's JSON answer, or a failure that says what came back instead."""
    rc, stdout, stderr = res.get("rc"), res.get("stdout", ""), res.get("stderr", "")
    answer, junk = _json_lines(stdout)
    if isinstance(answer, dict) and ("document" in answer or answer.get("failed")):
        if rc and not answer.get("failed"):
            answer.update(failed=True, msg=f"the collector exited with status {rc}")
        if junk:
            shown = "; ".join(junk[:3])[:200]
            answer.setdefault("warnings", []).append(
                f"the host printed lines besides the collector's answer: {shown!r}")
        return answer
    last = (stderr.strip().splitlines() or [""])[-1]
    if rc == 127 and last and python not in last:  # another command: a become or wrapper program, say
        msg = f"a command was not found on the host (exit 127): {last}"
    elif rc == 127:
        msg = f"{python} not found on the host: {last}" if last else f"{python} not found on the host"
    elif stdout.strip():
        msg = f"the collector's output is not a JSON result (rc {rc}): {stdout.strip()[:200]!r}"
    else:
        msg = f"the collector ended with status {rc} and no result"
    return {"failed": True, "msg": msg, "rc": rc, "module_stdout": stdout[-2000:], "module_stderr": stderr[-2000:]}
