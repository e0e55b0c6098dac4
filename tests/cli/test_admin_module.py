"""The admin module's kill, called in this process on a real child process whose command line is never handed
over (a named pipe in a copy of its /proc entry stands for a process stuck in the kernel; see
tests/collectors/test_stuck_reads.py): it refuses at once, where a plain read would hold the task until its time
limit. The end-to-end admin tests (tests/e2e/test_admin.py) run the module through Ansible and sshd."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading

import pytest

import collectors
from collectors import _util, gpus
from tests.conftest import PROJECT


class Done(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


class Module:
    """What kill() uses of AnsibleModule: its params, check_mode, and the two ways out."""

    def __init__(self, **params):
        self.params = {"pid": None, "expect_user": None, "expect_command": None, "expect_started": None,
                       "signal": "TERM", "wait": 0, **params}
        self.check_mode = True

    def fail_json(self, **result):
        raise Done({"failed": True, **result})

    def exit_json(self, **result):
        raise Done(result)


@pytest.fixture
def admin_module(monkeypatch):
    """roles/admin/library/fleetscope_admin.py, its module_utils being this checkout's collectors."""
    monkeypatch.setitem(sys.modules, "ansible.module_utils.fleetscope_collectors", collectors)
    monkeypatch.setitem(sys.modules, "ansible.module_utils.fleetscope_collectors._util", _util)
    monkeypatch.setitem(sys.modules, "ansible.module_utils.fleetscope_collectors.gpus", gpus)
    path = PROJECT / "roles" / "admin" / "library" / "fleetscope_admin.py"
    spec = importlib.util.spec_from_file_location("fleetscope_admin_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def stuck_child(tmp_path, monkeypatch):
    """A sleeping child, seen through a /proc whose entry for it has a command line that never comes."""
    child = subprocess.Popen(["sleep", "60"])
    root = tmp_path / "proc"
    (root / str(child.pid)).mkdir(parents=True)
    (root / str(child.pid) / "comm").write_text("sleep\n")
    pipe = root / str(child.pid) / "cmdline"
    os.mkfifo(pipe)
    _util.stuck_reads.clear()
    del _util._reader[:]
    monkeypatch.setattr(_util, "PROC", str(root))
    monkeypatch.setattr(_util, "STUCK_READ_S", 0.2)
    monkeypatch.setenv("FLEETSCOPE_PSUTIL", "0")
    yield child
    try:
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))  # a reader stuck on it goes on
    except OSError:
        pass  # none waits
    _util.stuck_reads.clear()
    del _util._reader[:]
    child.kill()
    child.wait()


def test_kill_refuses_a_process_whose_command_line_cannot_be_read(admin_module, stuck_child):
    module = Module(pid=stuck_child.pid, expect_user=_util.owner(stuck_child.pid), expect_command="sleep 60")
    result = {}

    def run():
        try:
            admin_module.kill(module)
        except Done as e:
            result.update(e.result)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "kill() waited on the command line"
    assert result.get("failed") and "could not be read" in result["msg"], result
    assert stuck_child.poll() is None  # not signalled


def test_ctrl_c_while_an_action_is_recorded_or_its_views_refreshed_still_says_what_ran(tmp_path, monkeypatch):
    """Diff review: Ctrl-C during the views' refresh, after the action ran and was recorded, ended the command
    before it said the action's result. A query that Ctrl-C stops while the record is written (DuckDB's
    RuntimeError) was a traceback: it is said as not recorded, the action having run."""
    import duckdb

    from fleetscope import admin
    from fleetscope.warehouse import catalog

    def result():
        return admin.AdminResult("node1", "kill", "pid 7", "ok", True, "killed", False)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(catalog, "refresh_catalog_quietly", interrupted)
    said = admin._on_record(tmp_path, result(), {"pid": 7})
    assert said.unrecorded is None and "interrupted" in said.warning
    assert duckdb.sql(f"SELECT host, status FROM '{tmp_path}/admin_actions/*/*.parquet'").fetchall() == [
        ("node1", "ok")]

    def stopped(*args, **kwargs):
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(admin, "record", stopped)
    said = admin._on_record(tmp_path, result(), {"pid": 7})
    assert said.unrecorded.startswith("interrupted while it was written")
