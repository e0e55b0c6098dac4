"""The `fleetscope` command as a user runs it: help, exit codes, SQL output."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import platform
import subprocess
import sys
from datetime import datetime

import pytest

from fleetscope.lock import DataLock
from fleetscope.warehouse import ingest_pending
from tests import docfactory as f
from tests.conftest import PROJECT, fleetscope_bin, sql_json

T0 = datetime(2026, 11, 23, 9, 0)


@pytest.fixture
def warehouse(tmp_path):
    data = tmp_path / "data"
    f.spool_run(data, T0, [f.ok("gpu01", T0, f.document("gpu01", T0, gpus=[f.gpu(0, util=50)])),
                           f.unreachable("lost01", T0, "ssh: connect to host 10.0.0.9 port 22: No route")])
    ingest_pending(data)
    return data


@pytest.mark.parametrize("command", ["collect", "report", "sql", "ingest"])
def test_every_subcommand_has_help(run_fleetscope, command):
    proc = run_fleetscope(command, "--help")
    assert proc.returncode == 0 and "usage: fleetscope " + command in proc.stdout


def test_top_level_help_documents_exit_codes(run_fleetscope):
    proc = run_fleetscope("--help")
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "6 ", "75 ", "130 "):
        assert "\n  " + code in proc.stdout


def test_sql_prints_a_table_csv_and_json(run_fleetscope, warehouse):
    q = "SELECT host, status, message FROM host_status ORDER BY host"
    table = run_fleetscope("sql", "--data", str(warehouse), q)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["host", "status", "message"]
    assert [c.strip() for c in lines[3].split("|")][:2] == ["lost01", "unreachable"]
    assert lines[-1] == "(2 rows)"
    rows = list(csv.reader(io.StringIO(run_fleetscope("sql", "--data", str(warehouse), "--format", "csv", q).stdout)))
    assert rows[0] == ["host", "status", "message"] and rows[2][:2] == ["lost01", "unreachable"]
    assert sql_json(run_fleetscope, warehouse, q)[1]["message"].startswith("ssh: connect")


def test_sql_error_exits_5_with_the_message(run_fleetscope, warehouse):
    proc = run_fleetscope("sql", "--data", str(warehouse), "SELECT nope FROM host_status")
    assert proc.returncode == 5 and "nope" in proc.stderr


def test_interactive_sql_prompt(run_fleetscope, warehouse):
    proc = subprocess.run([*fleetscope_bin(), "sql", "--data", str(warehouse)], cwd=PROJECT, text=True,
                          input=".tables\nSELECT count(*) AS n FROM gpu_samples;\nSELECT bad;\n.quit\n",
                          capture_output=True, timeout=60)
    # Statements piped in: every one runs, and the error of one makes the exit status 5.
    assert proc.returncode == 5, proc.stderr
    assert "gpu_samples" in proc.stdout and "host_status" in proc.stdout
    assert "\n1\n(1 row)" in proc.stdout
    assert 'column "bad" was not found' in proc.stderr


def test_missing_inventory_exits_2(run_fleetscope, tmp_path):
    proc = run_fleetscope("collect", "--data", str(tmp_path), "--inventory", str(tmp_path / "nope.ini"))
    assert proc.returncode == 2 and "inventory not found" in proc.stderr


def test_bad_settings_exit_2(run_fleetscope, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[collect]\nforkz = 1\n")
    proc = run_fleetscope("report", "--config", str(cfg), "--data", str(tmp_path))
    assert proc.returncode == 2 and "forkz" in proc.stderr


def test_a_second_collect_while_one_runs_exits_75_and_does_nothing(run_fleetscope, tmp_path):
    inventory = tmp_path / "inv.ini"
    inventory.write_text("[local]\nlocalhost ansible_connection=local\n")
    with DataLock(tmp_path / "data"):
        proc = run_fleetscope("collect", "--data", str(tmp_path / "data"), "--inventory", str(inventory))
    assert proc.returncode == 75, proc.stderr
    assert not (tmp_path / "data" / "spool").exists()


def test_rollup_command_rolls_up_and_says_what_it_did(run_fleetscope, warehouse):
    proc = run_fleetscope("rollup", "--data", str(warehouse))
    assert proc.returncode == 0, proc.stderr
    assert "rollup: 1 day(s) rolled up" in proc.stdout
    rows = sql_json(run_fleetscope, warehouse, "SELECT host, samples FROM gpu_hourly")
    assert rows == [{"host": "gpu01", "samples": 1}]
    again = run_fleetscope("rollup", "--data", str(warehouse))
    assert "rollup: 0 day(s) rolled up" in again.stdout


def test_the_command_ends_cleanly_whatever_its_output_is(tmp_path):
    """`fleetscope` ends with os._exit after flushing its output (fleetscope.cli.run): a closed stdout or a
    reader that went away is no traceback, and what was printed arrives whole."""
    inventory = tmp_path / "inv.ini"
    inventory.write_text("[lab]\n" + "".join(f"node{i:02d} ansible_host=127.0.0.{i}\n" for i in range(2, 60)))
    command = " ".join([*fleetscope_bin(), "hosts", "list", "-i", str(inventory)])
    closed = subprocess.run(f"{command} >&-", shell=True, capture_output=True, text=True, timeout=120, cwd=PROJECT)
    assert closed.returncode == 0 and "Traceback" not in closed.stderr, closed.stderr
    whole = subprocess.run(f"{command} | cat", shell=True, capture_output=True, text=True, timeout=120, cwd=PROJECT)
    assert whole.returncode == 0 and all(f"node{i:02d}" in whole.stdout for i in range(2, 60)), whole.stdout
    cut = subprocess.run(f"{command} | head -1", shell=True, capture_output=True, text=True, timeout=120, cwd=PROJECT)
    assert "Traceback" not in cut.stderr, cut.stderr


def test_an_interpreter_for_other_pythons_bytecode_that_fails_is_a_warning_once(run_fleetscope, tmp_path):
    """collect.bytecode_pythons: one missing, one that cannot compile. The run is stored either way; the
    one that cannot compile is said once (the bundle without it is reused), a missing one every run."""
    broken = tmp_path / "python3.9"
    broken.write_text("#!/bin/sh\necho 'Segmentation fault' >&2\nexit 139\n")
    broken.chmod(0o755)
    config = tmp_path / "fleetscope.toml"
    config.write_text(f'[collect]\nbytecode_pythons = ["auto", "nosuchpython", "{broken}"]\n')
    inventory = tmp_path / "inv.ini"
    inventory.write_text(f"[local]\nlocalhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    runs = [run_fleetscope("collect", "--config", str(config), "--data", str(tmp_path / "data"), "--inventory",
                           str(inventory), "--no-report") for _ in range(2)]
    for proc in runs:
        assert proc.returncode == 0 and "1 ok" in proc.stdout, proc.stdout + proc.stderr
        assert "warning: collect.bytecode_pythons: nosuchpython not found on PATH" in proc.stderr
    assert f"warning: no bytecode for {broken}" in runs[0].stderr and "Segmentation fault" in runs[0].stderr
    assert str(broken) not in runs[1].stderr
    known = json.loads((tmp_path / "data" / ".stage" / "host-pythons.json").read_text())
    assert known == {"localhost": {"python": platform.python_version(), "magic": importlib.util.MAGIC_NUMBER.hex(),
                                   "implementation": sys.implementation.name}}
