"""Hostile names and secrets on a real run: host names full of shell and SQL and HTML metacharacters,
and a process whose command line carries a password and a script tag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import markupsafe
import pytest

from tests.conftest import PROJECT, fleetscope_bin, sql_json

EVIL = "evil'\";$(touch PWNED)`touch PWNED2`<script>alert(1)</script>|&"
SECRET = "hunter2-very-secret"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    inventory = root / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {
        EVIL: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "plain": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
    }}}))
    config = root / "fleetscope.toml"
    config.write_text("[collect]\ntop_processes = 1000\n")
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "<script>alert(2)</script>",
                               f"--password={SECRET}", "--token", SECRET, f"https://bob:{SECRET}@example.org/x"])
    time.sleep(0.3)
    try:
        proc = subprocess.run(
            [*fleetscope_bin(), "collect", "--config", str(config), "--data", str(root / "data"),
             "--out", str(root / "site"), "--inventory", str(inventory), "--no-progress"],
            capture_output=True, text=True, timeout=300, cwd=root,
            env=dict(os.environ, ANSIBLE_SSH_CONTROL_PATH_DIR=str(root / "cp")))
    finally:
        victim.kill()
        victim.wait()
    return root, proc, victim.pid


def test_the_hostile_host_is_collected_under_its_exact_name(hostile_run, run_fleetscope):
    root, proc, _ = hostile_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = sql_json(run_fleetscope, root / "data", "SELECT host, status FROM host_status ORDER BY host")
    assert {r["host"]: r["status"] for r in rows} == {EVIL: "ok", "plain": "ok"}
    quoted = EVIL.replace("'", "''")
    rows = sql_json(run_fleetscope, root / "data", f"SELECT count(*) AS n FROM host_samples WHERE host = '{quoted}'")
    assert rows == [{"n": 1}]


def test_no_name_ever_reached_a_shell(hostile_run):
    root, *_ = hostile_run
    for folder in (root, PROJECT, root / "data"):
        assert not (folder / "PWNED").exists() and not (folder / "PWNED2").exists()


def test_files_for_the_host_stay_inside_their_folders(hostile_run):
    root, *_ = hostile_run
    for path in list((root / "site").rglob("*")) + list((root / "data").rglob("*")):
        assert path.resolve().is_relative_to(root), path
        assert "<" not in path.name and "$(" not in path.name and "'" not in path.name


def test_the_report_shows_names_and_commands_as_text(hostile_run):
    root, *_ = hostile_run
    index = (root / "site" / "index.html").read_text()
    assert "<script>alert(1)</script>" not in index
    assert str(markupsafe.escape(EVIL)) in index  # jinja2's escaping: &lt; &gt; &amp; &#34; &#39;


def test_secrets_are_redacted_before_they_are_stored(hostile_run, run_fleetscope):
    root, _, pid = hostile_run
    rows = sql_json(run_fleetscope, root / "data", f"SELECT command FROM host_processes WHERE pid = {pid}")
    assert rows, "the test process was not collected"
    for r in rows:
        assert SECRET not in r["command"] and "<redacted>" in r["command"]
        assert "<script>alert(2)</script>" in r["command"]  # stored as text; escaped only when shown
    everything = sql_json(run_fleetscope, root / "data",
                          f"SELECT count(*) AS n FROM host_processes WHERE command LIKE '%{SECRET}%'")
    assert everything == [{"n": 0}]
    for path in (root / "data").rglob("*"):
        if path.is_file() and path.suffix != ".parquet" and path.name != "fleet.duckdb":
            assert SECRET.encode() not in path.read_bytes(), path
