"""The `fleetscope` command as a user runs it: help, exit codes, SQL output."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import platform
import subprocess
import sys
from datetime import datetime
from types import SimpleNamespace

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


def test_collect_help_gives_the_readmes_cron_line(run_fleetscope):
    """The help's cron line had drifted from the README's (no date before each run in collect.log)."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    (cron,) = [line for line in readme.splitlines() if line.startswith("*/5 * * * *")]
    help_text = run_fleetscope("collect", "--help").stdout
    assert cron in " ".join(help_text.split()), help_text


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


def test_an_empty_query_is_a_usage_error_not_ok(run_fleetscope, warehouse):
    for query in ("", "  ;\n"):
        proc = run_fleetscope("sql", query, "--data", str(warehouse))
        assert proc.returncode == 2 and "the query is empty" in proc.stderr and proc.stdout == "", proc.stdout


def test_interactive_sql_prompt(run_fleetscope, warehouse):
    proc = subprocess.run([*fleetscope_bin(), "sql", "--data", str(warehouse)], cwd=PROJECT, text=True,
                          input=".tables\nSELECT count(*) AS n FROM gpu_samples;\nSELECT bad;\n.quit\n",
                          capture_output=True, timeout=60)
    # Statements piped in: every one runs, and the error of one makes the exit status 5.
    assert proc.returncode == 5, proc.stderr
    assert "gpu_samples" in proc.stdout and "host_status" in proc.stdout
    assert "\n1\n(1 row)" in proc.stdout
    assert 'column "bad" was not found' in proc.stderr


LONG_QUERY = "SELECT count(*) FROM range(100000000000) AS a"  # minutes: it is stopped long before


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used (utime + stime), from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_ctrl_c_stops_a_query_with_exit_130_not_a_traceback(warehouse):
    """Walkthrough: Ctrl-C during `fleetscope sql QUERY` printed DuckDB's RuntimeError("Query interrupted") as
    a traceback and exited 1."""
    import signal
    import time

    proc = subprocess.Popen([*fleetscope_bin(), "sql", "--data", str(warehouse), LONG_QUERY], cwd=PROJECT,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    # the query is running once the command has used more CPU than its whole start does (about 0.5 s)
    while proc.poll() is None and cpu_seconds(proc.pid) < 2.0 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


def test_a_query_stopped_by_duckdb_is_an_interrupt_and_other_errors_stay_errors():
    import duckdb

    from fleetscope.sqlshell import answer

    class Stopped:
        def __init__(self, error):
            self.error = error

        def execute(self, statement):
            raise self.error

    for error in (RuntimeError("Query interrupted"), duckdb.InterruptException("INTERRUPT Error")):
        with pytest.raises(KeyboardInterrupt):
            answer(Stopped(error), "SELECT 1")
    with pytest.raises(RuntimeError, match="something else"):
        answer(Stopped(RuntimeError("something else")), "SELECT 1")


class Terminal(io.StringIO):
    def isatty(self):
        return True


def prompt_with_a_signal(warehouse, signal_name: str, statements: str):
    """repl at a "terminal" over the warehouse, sent `signal_name` from outside 1.5 s in: (status or the
    exception it raised, its output)."""
    import signal

    from fleetscope.sqlshell import repl
    from fleetscope.warehouse import connect

    def terminated(signum, frame):  # as `fleetscope`'s main() has it: SIGTERM as Ctrl-C
        raise KeyboardInterrupt

    out = io.StringIO()
    con = connect(warehouse)
    before = signal.signal(signal.SIGTERM, terminated)  # never pytest's own death, whatever repl does
    sender = subprocess.Popen(["sh", "-c", f"sleep 1.5; kill -{signal_name} {os.getpid()}"])
    try:
        try:
            result = repl(con, warehouse, stdin=Terminal(statements), stdout=out)
        except KeyboardInterrupt as e:  # not out of the test: pytest would stop the whole session
            result = e
    finally:
        sender.kill()
        sender.wait()
        signal.signal(signal.SIGTERM, before)
        con.close()
    return result, out.getvalue()


def test_ctrl_c_at_the_prompt_stops_the_statement_and_the_prompt_goes_on(warehouse, capsys):
    """Walkthrough: at the prompt, Ctrl-C during a statement ended the session with a traceback; it now stops
    the statement and the next one runs."""
    status, out = prompt_with_a_signal(warehouse, "INT", f"{LONG_QUERY};\nSELECT 42 AS after;\n")
    assert status == 0 and "   42\n(1 row)" in out, (status, out)
    assert "interrupted" in capsys.readouterr().err  # the long statement was stopped, not finished


def test_ctrl_c_during_a_prompt_command_is_read_as_during_a_statement(warehouse, capsys):
    """Review: Ctrl-C landing in .tables or .schema ended the prompt with a traceback; as for a statement, the
    command stops and the prompt goes on at a terminal, a script piped in stops."""
    from fleetscope.sqlshell import repl
    from fleetscope.warehouse import connect

    class CtrlCOnTables:  # the catalog query of .tables is where the Ctrl-C lands: DuckDB says it so
        def __init__(self, con):
            self.con = con

        def execute(self, statement, *args):
            if "information_schema.tables" in statement:
                raise RuntimeError("Query interrupted")
            return self.con.execute(statement, *args)

    con = connect(warehouse)
    try:
        out = io.StringIO()
        assert repl(CtrlCOnTables(con), warehouse, stdin=Terminal(".tables\nSELECT 42 AS after;\n"), stdout=out) == 0
        assert "   42\n(1 row)" in out.getvalue() and "interrupted" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):  # from a pipe: the script stops (exit 130 in main)
            repl(CtrlCOnTables(con), warehouse, stdin=io.StringIO(".tables\nSELECT 42;\n"), stdout=io.StringIO())
    finally:
        con.close()


def test_sigterm_at_the_prompt_ends_the_session(warehouse):
    """Review: with Ctrl-C going on at the prompt, SIGTERM (a shutdown, `kill`) did too: it ends it (130)."""
    result, out = prompt_with_a_signal(warehouse, "TERM", f"{LONG_QUERY};\nSELECT 42 AS after;\n")
    assert isinstance(result, KeyboardInterrupt) and "after" not in out, (result, out)


def test_missing_inventory_exits_2(run_fleetscope, tmp_path):
    proc = run_fleetscope("collect", "--data", str(tmp_path / "data"), "--inventory", str(tmp_path / "nope.ini"))
    assert proc.returncode == 2 and "inventory not found" in proc.stderr
    assert not (tmp_path / "data").exists()  # a typo leaves no data folder behind (the lock made it)
    check = run_fleetscope("hosts", "check", "--data", str(tmp_path / "data"), "-i", str(tmp_path / "nope.ini"))
    assert check.returncode == 2 and "inventory not found" in check.stderr, check.stderr
    assert not (tmp_path / "data").exists()  # nor does hosts check's (Ansible's temporary folder made it)
    listed = run_fleetscope("collect", "--data", str(tmp_path / "data"), "-i", "gpu01,gpu02,")  # as -i takes it
    assert listed.returncode == 2 and "a comma-separated host list is not taken" in listed.stderr, listed.stderr


def test_bad_settings_exit_2(run_fleetscope, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[collect]\nforkz = 1\n")
    proc = run_fleetscope("report", "--config", str(cfg), "--data", str(tmp_path))
    assert proc.returncode == 2 and "forkz" in proc.stderr


def test_config_and_data_may_come_before_the_command_and_after_it_win(run_fleetscope, tmp_path, warehouse):
    bad = tmp_path / "bad.toml"
    bad.write_text("[collect]\nforkz = 1\n")
    good = tmp_path / "cfg" / "good.toml"  # its own default data folder, cfg/data, is not there
    good.parent.mkdir()
    good.write_text("")
    before = run_fleetscope("--config", str(bad), "sql", "--data", str(warehouse), "SELECT 1")
    assert before.returncode == 2 and "forkz" in before.stderr, before.stderr
    overridden = run_fleetscope("--config", str(bad), "--data", str(tmp_path / "nope"),
                                "sql", "--config", str(good), "--data", str(warehouse), "SELECT 42 AS x")
    assert overridden.returncode == 0 and "42" in overridden.stdout, overridden.stderr
    data_before = run_fleetscope("--data", str(warehouse), "--config", str(good), "sql",
                                 "SELECT count(*) AS n FROM host_status")
    assert data_before.returncode == 0 and "2" in data_before.stdout, data_before.stderr  # gpu01 and lost01


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


@pytest.mark.parametrize("where", ["fleetscope.cli", "argparse"])
def test_ctrl_c_while_the_command_starts_is_an_interrupt_not_a_traceback(tmp_path, where):
    """A Ctrl-C in the command's first tenth of a second lands in its imports (``fleetscope.cli``) or while
    it reads its arguments (argparse's own lazy import, made to raise here): exit 130 and one line."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name == {where!r} and 'fleetscope' in sys.modules:\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n")
    if where == "argparse":  # imported by cli itself: make the parse raise instead, after cli is imported
        (hook / "sitecustomize.py").write_text(
            "import argparse\n"
            "def interrupt(self, *args, **kwargs):\n"
            "    raise KeyboardInterrupt\n"
            "argparse.ArgumentParser.parse_args = interrupt\n")
    env = {**os.environ, "PYTHONPATH": str(hook)}
    proc = subprocess.run([*fleetscope_bin(), "--version"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 130, proc.stdout + proc.stderr
    assert proc.stderr == "fleetscope: interrupted\n" and proc.stdout == ""


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


def test_sql_answers_a_statement_without_rows_and_keeps_repeated_column_names(run_fleetscope, warehouse):
    assert run_fleetscope("sql", "--data", str(warehouse), "-- nothing").stdout.strip() == "ok"
    assert sql_json(run_fleetscope, warehouse, "SELECT 1 AS n, 2 AS n, 3 AS n") == [{"n": 1, "n_2": 2, "n_3": 3}]


def test_an_sql_error_raised_while_rows_are_fetched_exits_5(run_fleetscope, warehouse):
    query = "SELECT CASE WHEN i > 3000000 THEN ('a' || i)::INTEGER ELSE i END FROM range(3000002) t(i)"
    proc = run_fleetscope("sql", "--data", str(warehouse), query)
    assert proc.returncode == 5 and "Could not convert string 'a3000001'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [("sql", "SELECT 1"), ("report",), ("ingest",), ("rollup",)])
def test_a_data_folder_that_is_not_there_is_named_not_read_as_an_empty_fleet(run_fleetscope, tmp_path, command):
    missing = tmp_path / "typo"
    proc = run_fleetscope(command[0], "--data", str(missing), *command[1:])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"no data folder at {missing}" in proc.stderr and not missing.exists()
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("command, code", [(("report",), 6), (("rollup",), 4)])
def test_a_damaged_warehouse_file_is_named_with_the_commands_exit_code(run_fleetscope, warehouse, command, code):
    (damaged,) = warehouse.glob("gpu_samples/date=*/*.parquet")
    damaged.write_bytes(b"PAR1 and then nothing")
    proc = run_fleetscope(command[0], "--data", str(warehouse), *command[1:])
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{damaged} is damaged: move it out of {warehouse} and run again" in proc.stderr
    assert damaged.read_bytes() == b"PAR1 and then nothing"  # left for the person to look at


def test_a_report_folder_that_cannot_be_written_exits_6_and_says_which(run_fleetscope, warehouse, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    proc = run_fleetscope("report", "--data", str(warehouse), "--out", str(tmp_path / "a-file" / "site"))
    assert proc.returncode == 6, proc.stdout + proc.stderr
    assert "cannot write or read the report's folder or the data" in proc.stderr
    assert "spool" not in proc.stderr and "Traceback" not in proc.stderr


def test_an_inventory_ansible_cannot_parse_is_a_usage_error_for_hosts(run_fleetscope, tmp_path):
    broken = tmp_path / "broken.ini"
    broken.write_text("[gpu\nfoo bar=\n")
    for args in (("hosts", "list"), ("hosts", "add", "newhost")):
        proc = run_fleetscope(*args, "-i", str(broken))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "No inventory was parsed" in proc.stderr and "Traceback" not in proc.stderr
    assert broken.read_text() == "[gpu\nfoo bar=\n"  # not written into
    missing = run_fleetscope("hosts", "list", "-i", str(tmp_path / "nope.ini"))
    assert missing.returncode == 2 and "inventory not found" in missing.stderr


def test_a_limit_file_that_is_not_there_is_a_usage_error(run_fleetscope, tmp_path):
    inventory = tmp_path / "inv.ini"
    inventory.write_text("[local]\n"
                         'local0 ansible_connection=local ansible_python_interpreter="{{ ansible_playbook_python }}"\n')
    proc = run_fleetscope("collect", "--inventory", str(inventory), "--limit", f"@{tmp_path}/nope.txt", "--no-report",
                          "--data", str(tmp_path / "data"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    # the file, as a path: not the inventory (Ansible's message named it, as if it were the culprit) nor bytes
    assert f"fleetscope collect: --limit file not found: {tmp_path}/nope.txt" in proc.stderr, proc.stderr
    assert str(inventory) not in proc.stderr and "b'" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "data" / "spool").exists() or not list((tmp_path / "data" / "spool").iterdir())
    check = run_fleetscope("hosts", "check", "-i", str(inventory), "--limit", f"@{tmp_path}/nope.txt",
                           "--data", str(tmp_path / "data"))
    assert check.returncode == 2 and f"--limit file not found: {tmp_path}/nope.txt" in check.stderr, check.stderr


def test_sql_on_a_warehouse_with_a_damaged_file_answers_from_the_other_tables(run_fleetscope, warehouse):
    (damaged,) = warehouse.glob("gpu_samples/date=*/*.parquet")
    damaged.write_bytes(b"PAR1 and then nothing")
    other = run_fleetscope("sql", "--data", str(warehouse), "--format", "csv", "SELECT count(*) AS n FROM runs")
    assert other.returncode == 0 and other.stdout.splitlines() == ["n", "1"]
    assert "warning: gpu_samples: " in other.stderr and f"{damaged} is damaged" in other.stderr
    same = run_fleetscope("sql", "--data", str(warehouse), "SELECT count(*) FROM gpu_samples")
    assert same.returncode == 5 and "table gpu_samples cannot be read" in same.stderr and str(damaged) in same.stderr
    assert "Traceback" not in other.stderr + same.stderr


def test_an_inventory_folder_with_one_source_ansible_cannot_parse_still_lists_the_rest(run_fleetscope, tmp_path):
    """As ansible-playbook takes it: a plugin config of a collection not installed is warned about, not fatal."""
    folder = tmp_path / "inventory"
    folder.mkdir()
    (folder / "hosts.ini").write_text("[gpu]\nnode1 ansible_host=10.0.0.1\n")
    (folder / "cloud.yml").write_text("plugin: not_a_real_plugin\n")
    proc = run_fleetscope("hosts", "list", "-i", str(folder))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line.split("|")[0].strip() for line in proc.stdout.splitlines()[2:-1]] == ["node1"]


def test_a_read_that_finds_a_file_swapped_away_by_a_rollup_is_made_again(monkeypatch):
    """Readers hold no lock: a query that listed a day's files as rollup swapped the day's compacted file in
    finds one gone (IO Error ... No such file or directory), and is run again on a fresh listing."""
    import duckdb

    from fleetscope import cli
    from fleetscope.cli import _again_if_swapped

    calls, reopened = [], []

    def read():
        calls.append(1)
        if len(calls) == 1:
            raise duckdb.IOException('IO Error: Cannot open file "/d/gpu_samples/date=2026-11-24/r.parquet": '
                                     "No such file or directory")
        return "rows"

    assert _again_if_swapped(read, lambda: reopened.append(1)) == "rows" and len(calls) == 2 and reopened == [1]

    def broken():
        raise duckdb.ConversionException("Conversion Error: not a number")

    with pytest.raises(duckdb.ConversionException):  # any other error: at once, not again
        _again_if_swapped(broken, lambda: reopened.append(1))
    assert reopened == [1]

    # A rollup compacting many days swaps one every few seconds: a long read lost three times in a row, and
    # the report failed (1 in 3, in a review). It keeps trying, with a growing pause, within its patience.
    # Its clock is a fake one that its sleeps move on: real sleeps overrun on a loaded machine (CI).
    calls.clear()
    clock = {"now": 1000.0}
    slept: list[float] = []

    def sleep(seconds):
        slept.append(seconds)
        clock["now"] += seconds

    monkeypatch.setattr(cli, "time", SimpleNamespace(monotonic=lambda: clock["now"], sleep=sleep))

    def unlucky():
        calls.append(clock["now"])
        if len(calls) <= 5:
            raise duckdb.IOException('IO Error: Cannot open file "/d/x.parquet": No such file or directory')
        return "rows"

    assert _again_if_swapped(unlucky, patience_s=30) == "rows" and len(calls) == 6
    assert slept == [0.2, 0.4, 0.8, 1.6, 2.0], slept
    calls.clear()
    with pytest.raises(duckdb.IOException):  # past its patience: the error
        _again_if_swapped(unlucky, patience_s=1)
    assert len(calls) == 3  # at 0, 0.2 and 0.6 s; the next, after 0.8 s more, would be past 1 s

    # Patience counts from the first failure, not from the start: a read longer than it still tries again.
    calls.clear()

    def slow_then_unlucky():
        calls.append(1)
        if len(calls) == 1:
            clock["now"] += 1.2
            raise duckdb.IOException('IO Error: Cannot open file "/d/x.parquet": No such file or directory')
        return "rows"

    assert _again_if_swapped(slow_then_unlucky, patience_s=1) == "rows" and len(calls) == 2

    # A swap while the files are listed again is one more try, not an error.
    calls.clear()
    listings = []

    def relist():
        listings.append(1)
        if len(listings) == 1:
            raise duckdb.IOException('IO Error: Cannot open file "/d/y.parquet": No such file or directory')

    assert _again_if_swapped(unlucky, relist, patience_s=30) == "rows" and len(listings) == 6  # 1 failed


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "prompt"])
def test_a_statement_at_the_prompt_or_piped_that_finds_a_file_swapped_away_is_made_again(
        warehouse, monkeypatch, capsys, terminal):
    """`fleetscope sql QUERY` read again where a rollup swapped a day's files in under it, but a script piped
    in (`fleetscope sql < script.sql`) failed with "IO Error: Cannot open file ...: No such file or
    directory" and exit 5, and the prompt answered with the error. Made again, on the same connection: the
    table the script made is still there, and the day's compacted file is read."""
    import duckdb

    from fleetscope import cli
    from fleetscope import warehouse as wh
    from fleetscope.warehouse import partitions

    (day,) = (warehouse / "gpu_samples").glob("date=*")
    (listed,) = day.glob("*.parquet")

    class RollupMeanwhile:  # the rollup swaps the day's compacted file in while the statement reads the day
        def __init__(self, con):
            self.con, self.swapped = con, False

        def execute(self, statement, *args):
            if "FROM gpu_samples" in statement and not self.swapped:
                self.swapped = True
                staging = day.with_name(partitions.NEW + day.name)
                staging.mkdir()
                (staging / "compacted.parquet").write_bytes(listed.read_bytes())
                partitions.swap_in(day)
                raise duckdb.IOException(f'IO Error: Cannot open file "{listed}": No such file or directory')
            return self.con.execute(statement, *args)

        def close(self):
            self.con.close()

    opened = []
    connect = wh.connect
    monkeypatch.setattr(wh, "connect", lambda *a, **k: opened.append(RollupMeanwhile(connect(*a, **k))) or opened[-1])
    script = ("CREATE TEMP TABLE mine AS SELECT 7 AS n;\n"
              "SELECT count(*) AS samples, max(utilization_gpu_pct) AS util, (SELECT n FROM mine) AS n\n"
              "FROM gpu_samples;\n")
    monkeypatch.setattr(sys, "stdin", Terminal(script) if terminal else io.StringIO(script))
    status = cli.main(["sql", "--data", str(warehouse)])
    out, err = capsys.readouterr()
    assert status == 0 and "error" not in err, (status, err)
    assert len(opened) == 1 and opened[0].swapped and [p.name for p in day.iterdir()] == ["compacted.parquet"]
    assert [[cell.strip() for cell in line.split("|")] for line in out.splitlines() if line.endswith("| 7")] == [
        ["1", "50", "7"]], out  # samples, util, n


def test_a_line_of_several_statements_is_not_made_again_after_a_swap(warehouse, monkeypatch, capsys):
    """Review: the prompt sends a line's statements together; made again after a swap, those before the one
    that failed ran twice (an INSERT added its row twice). A line of several statements is not made again:
    its error is said, and the statements after it go on."""
    import duckdb

    from fleetscope import cli
    from fleetscope import warehouse as wh

    class SwapOnTheSecond:  # the line's second statement meets a file a rollup swapped away
        def __init__(self, con):
            self.con, self.calls = con, 0

        def execute(self, statement, *args):
            if "FROM gpu_samples" in statement:
                self.calls += 1
                self.con.execute(statement.split(";")[0])  # what DuckDB ran before the failing statement
                raise duckdb.IOException(f'IO Error: Cannot open file "{warehouse}/gpu_samples/x.parquet": '
                                         "No such file or directory")
            return self.con.execute(statement, *args)

        def close(self):
            self.con.close()

    opened = []
    connect = wh.connect
    monkeypatch.setattr(wh, "connect", lambda *a, **k: opened.append(SwapOnTheSecond(connect(*a, **k))) or opened[-1])
    slept: list[float] = []  # the tries' waits, not waited
    monkeypatch.setattr(cli, "time", SimpleNamespace(monotonic=lambda: 1000.0 + sum(slept), sleep=slept.append))
    script = ("CREATE TEMP TABLE t (n INTEGER);\n"
              "INSERT INTO t VALUES (1); SELECT count(*) FROM gpu_samples;\n"
              "SELECT count(*) AS rows_in_t FROM t;\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO(script))
    assert cli.main(["sql", "--data", str(warehouse)]) == 5
    out, err = capsys.readouterr()
    assert opened[0].calls == 1 and slept == [] and "No such file or directory" in err, (opened[0].calls, err)
    assert "rows_in_t" in out and " 1\n(1 row)" in out, out  # the INSERT ran once


@pytest.mark.parametrize("piped", [True, False], ids=["piped", "query"])
def test_a_statement_missing_a_file_of_its_own_fails_at_once(warehouse, monkeypatch, capsys, tmp_path, piped):
    """Only a file gone from the data folder is taken for a rollup's swap: a COPY to a folder that is not there
    says "No such file or directory" too, and is the statement's error at once, not after a minute of tries."""
    from fleetscope import cli

    slept: list[float] = []
    monkeypatch.setattr(cli, "time", SimpleNamespace(monotonic=lambda: 1000.0 + sum(slept), sleep=slept.append))
    copy = f"COPY (SELECT 1) TO '{tmp_path / 'no-such-folder' / 'out.parquet'}'"
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{copy};\nSELECT 42 AS after;\n"))
    assert cli.main(["sql", "--data", str(warehouse), *([] if piped else [copy])]) == 5
    out, err = capsys.readouterr()
    assert "No such file or directory" in err and slept == [], (err, slept)
    assert ("   42\n(1 row)" in out) == piped  # a script goes on to its next statement


def test_sql_json_is_strict_json_nan_and_infinity_are_null_bytes_are_hex(run_fleetscope, warehouse):
    """A 0/0 in SQL (a day of one sample: no CPU time yet) printed NaN, which strict JSON parsers refuse."""
    q = "SELECT 0.0 / 0.0 AS nan, 1.0 / 0.0 AS inf, 0.5::DECIMAL(4, 2) AS dec, '\\x61\\x62'::BLOB AS raw, 1 AS one"
    proc = run_fleetscope("sql", "--data", str(warehouse), "--format", "json", q)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert row == {"nan": None, "inf": None, "dec": 0.5, "raw": "6162", "one": 1}


def test_hosts_check_of_no_host_fails_like_collect(run_fleetscope, tmp_path):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[lab]\nlocalhost ansible_connection=local\n")
    proc = run_fleetscope("hosts", "check", "-i", str(inventory), "--data", str(tmp_path / "d"), "--limit", "nosuch")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "nothing checked: --limit 'nosuch' matches no host" in proc.stderr


def test_the_prompt_says_when_a_table_or_command_is_not_there(run_fleetscope, warehouse):
    proc = subprocess.run([*fleetscope_bin(), "sql", "--data", str(warehouse)], cwd=PROJECT, text=True,
                          input=".schema host_status\n.schema nosuch\n.bogus\n", capture_output=True, timeout=60)
    assert "run_id" in proc.stdout and "VARCHAR" in proc.stdout  # a table's columns
    assert "error: no table 'nosuch'" in proc.stderr and "error: unknown command '.bogus'" in proc.stderr
    assert proc.returncode == 5  # piped in: an error is the exit status, as for a statement


@pytest.mark.parametrize("command", [("collect", "--no-report"), ("sql", "SELECT 1"), ("report",), ("rollup",)])
def test_a_data_path_that_is_a_file_is_named_as_not_a_folder(run_fleetscope, tmp_path, command):
    afile = tmp_path / "afile"
    afile.write_text("")
    proc = run_fleetscope(*command, "--data", str(afile))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{afile} is not a folder" in proc.stderr and "nothing collected there yet" not in proc.stderr
    assert "Traceback" not in proc.stderr and "spool keeps" not in proc.stderr


def test_a_report_that_fails_to_render_exits_6_with_its_traceback(tmp_path, monkeypatch, capsys):
    """Not a data or disk error (those say which file): a defect, or a site too large for the memory. The
    documented status (6) for scripts, the traceback for a bug report, and the previous report untouched."""
    import reports
    from fleetscope import cli

    at = datetime(2026, 11, 23, 9, 0)
    data, out = tmp_path / "data", tmp_path / "site"
    f.spool_run(data, at, [f.ok("gpu01", at, f.document("gpu01", at, gpus=[f.gpu(0)]))])
    ingest_pending(data)
    out.mkdir()
    (out / "index.html").write_text("the previous report")

    def out_of_memory(*args, **kwargs):
        raise MemoryError("heat map")

    monkeypatch.setattr(reports, "build_site", out_of_memory)
    assert cli.main(["report", "--data", str(data), "--out", str(out)]) == 6
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1] == (
        "fleetscope report: rendering the report failed: MemoryError: heat map; any previous report stays in place")
    assert (out / "index.html").read_text() == "the previous report"


def test_a_table_that_cuts_a_cell_says_so_and_where_to_get_it_whole(run_fleetscope, warehouse):
    """Walkthrough: the table format cut cells at 60 characters with "…", without saying so."""
    long = run_fleetscope("sql", "--data", str(warehouse), f"SELECT '{'x' * 80}' AS message")
    assert long.returncode == 0 and "x…" in long.stdout
    assert "(1 row; cells cut at 60 characters: --format csv or json has them whole)" in long.stdout
    short = run_fleetscope("sql", "--data", str(warehouse), "SELECT 'short' AS message")
    assert short.stdout.rstrip().endswith("(1 row)")
    exact = run_fleetscope("sql", "--data", str(warehouse), f"SELECT '{'y' * 59}…' AS message")  # not cut
    assert exact.stdout.rstrip().endswith("(1 row)"), exact.stdout
    from fleetscope.sqlshell import format_table  # hosts check's table has no --format to point at

    assert format_table(["reason"], [("z" * 70,)]).endswith("(1 row; cells cut at 60 characters)")
