"""The whole path, every part real: fleetscope collect -> ansible-runner -> ssh -> sshd -> python3 on the
host -> spool -> Parquet/DuckDB -> static site. Three healthy hosts, one dead address, one broken host."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fleetscope.stage import code_entries, split_parts
from tests import faults, sshd
from tests.collectors.test_bootstrap import PYPY
from tests.conftest import PROJECT, bare_python, fleetscope_bin, magic_of, sql_json

HEALTHY = ["node1", "node2", "node3"]


@pytest.fixture(scope="module")
def fleet_run(sshd_fleet, tmp_path_factory):
    """Two collect runs against the sshd fleet; returns (data_dir, site_dir, [CompletedProcess])."""
    root = tmp_path_factory.mktemp("e2e")
    data, site = root / "data", root / "site"
    dead_port = sshd.free_port("127.0.0.9")
    first = sshd_fleet.hosts[0]
    inventory = root / "inventory.ini"
    # the healthy hosts' python3 keeps what each run sent it (tests/faults.py: record_stdin)
    recorder = faults.interpreter(root, "record_stdin", bare_python())
    inventory.write_text(sshd_fleet.inventory(str(recorder), extra=[
        # Nothing listens there: Ansible reports it unreachable within the connect timeout.
        f"dead ansible_host=127.0.0.9 ansible_port={dead_port} ansible_user={sshd_fleet.user} "
        f"ansible_ssh_private_key_file={sshd_fleet.key} "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={sshd_fleet.known_hosts}'",
        # Reachable, but its python3 does not exist: the module cannot run, the host is failed.
        f"broken ansible_host={first.address} ansible_port={first.port} ansible_user={sshd_fleet.user} "
        f"ansible_ssh_private_key_file={sshd_fleet.key} ansible_python_interpreter=/nonexistent/python3 "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={sshd_fleet.known_hosts}'",
    ]))
    config = root / "fleetscope.toml"
    # bytecode for a second Python too, where there is one (.ci/run installs pypy3)
    others = json.dumps(["auto", *filter(None, [PYPY])])
    config.write_text(f"[collect]\nhost_timeout_s = 60\nconnect_timeout_s = 5\nbytecode_pythons = {others}\n")
    env = dict(os.environ, ANSIBLE_SSH_CONTROL_PATH_DIR=str(root / "cp"))
    env.pop("FLEETSCOPE_CONFIG", None)
    remote_tmp = Path.home() / ".ansible" / "tmp"
    before = set(remote_tmp.iterdir()) if remote_tmp.exists() else set()
    procs = []
    for _ in range(2):
        procs.append(subprocess.run(
            [*fleetscope_bin(), "collect", "--config", str(config), "--data", str(data), "--out", str(site),
             "--inventory", str(inventory), "--no-progress"],
            capture_output=True, text=True, timeout=300, env=env, cwd=PROJECT,
        ))
    after = set(remote_tmp.iterdir()) if remote_tmp.exists() else set()
    return data, site, procs, after - before


def test_collect_exits_1_and_names_the_bad_hosts(fleet_run):
    _, site, procs, _ = fleet_run
    for proc in procs:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "3 ok, 1 unreachable, 1 failed" in proc.stdout, proc.stdout + proc.stderr
        assert re.search(r"^\s+dead: unreachable: .+", proc.stdout, re.M), proc.stdout
        assert re.search(r"^\s+broken: failed: .+", proc.stdout, re.M), proc.stdout
        assert f"report: {site / 'index.html'}" in proc.stdout
    # The first run rolls up (never done before); the second, minutes later, is not due.
    assert "rollup: 1 day(s) rolled up" in procs[0].stdout and "rollup:" not in procs[1].stdout


def test_the_first_run_was_rolled_up(fleet_run, run_fleetscope):
    data, *_ = fleet_run
    rows = sql_json(run_fleetscope, data, "SELECT host, sum(samples) AS n FROM host_hourly GROUP BY host ORDER BY host")
    assert [(r["host"], r["n"]) for r in rows] == [(h, 1) for h in HEALTHY]


def test_every_host_has_its_status_each_run(fleet_run, run_fleetscope):
    data, *_ = fleet_run
    rows = sql_json(run_fleetscope, data,
                    "SELECT host, status, count(*) AS n, max(message) AS message FROM host_status "
                    "GROUP BY ALL ORDER BY host")
    got = {r["host"]: (r["status"], r["n"]) for r in rows}
    assert got == {**{h: ("ok", 2) for h in HEALTHY}, "dead": ("unreachable", 2), "broken": ("failed", 2)}
    messages = {r["host"]: r["message"] for r in rows}
    assert messages["dead"] and messages["broken"]


def test_healthy_hosts_have_samples_and_inventory(fleet_run, run_fleetscope):
    data, *_ = fleet_run
    rows = sql_json(run_fleetscope, data,
                    "SELECT host, count(*) AS n, min(cpu_total_jiffies) AS jiffies, min(mem_total_bytes) AS mem, "
                    "min(gpu_count) AS gpus FROM host_samples GROUP BY host ORDER BY host")
    assert [r["host"] for r in rows] == HEALTHY
    for r in rows:
        assert r["n"] == 2 and r["jiffies"] > 0 and r["mem"] > 0 and r["gpus"] == 0
    runs = sql_json(run_fleetscope, data, "SELECT hosts_total, hosts_ok FROM runs")
    assert [(r["hosts_total"], r["hosts_ok"]) for r in runs] == [(5, 3), (5, 3)]
    # The inventory is stored on change only: two runs, one row per host.
    hosts = sql_json(run_fleetscope, data, "SELECT host, count(*) AS n FROM hosts GROUP BY host ORDER BY host")
    assert [(r["host"], r["n"]) for r in hosts] == [(h, 1) for h in HEALTHY]


def test_hosts_ran_the_bare_python_without_psutil(fleet_run, run_fleetscope):
    data, *_ = fleet_run
    rows = sql_json(run_fleetscope, data, "SELECT DISTINCT python FROM hosts")
    version = subprocess.run([bare_python(), "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert [r["python"] for r in rows] == [version]


def test_nothing_is_left_on_the_hosts(fleet_run):
    *_, new_remote_tmp = fleet_run
    assert not new_remote_tmp, f"left on the host: {new_remote_tmp}"


def test_report_has_every_host_and_a_page_each(fleet_run):
    _, site, *_ = fleet_run
    index = (site / "index.html").read_text()
    for host in HEALTHY + ["dead", "broken"]:
        assert host in index
    links = dict(re.findall(r'href="(hosts/[^"]+\.html)"[^>]*>([^<]+)<', index))
    linked_hosts = {text.strip() for text in links.values()}
    assert set(HEALTHY) <= linked_hosts
    for href, host in links.items():
        page = (site / href).read_text()
        assert host.strip() in page
        if host.strip() in HEALTHY:  # hosts with samples get timelines
            assert "../plotly.min.js" in page and "figure-" in page  # drawn in a browser by tests/reports
    assert (site / "plotly.min.js").stat().st_size > 1_000_000
    assert not list(site.rglob("plotly.min.js"))[1:], "plotly.min.js must be written once"


def recorded_stdin(data: Path) -> dict[int, list[tuple[dict, bytes]]]:
    """{sshd port: [(the arguments, the bundle) of each run, in order]}, as the healthy hosts received them."""
    sent = {}
    for port, args, bundle in faults.recorded(data.parent / "record_stdin"):
        sent.setdefault(port, []).append((args, bundle))
    return sent


def test_hosts_get_the_bytecode_for_their_python_once_it_is_known(fleet_run, sshd_fleet):
    """The first run sends every host the bytecode of each Python the controller compiled for; each host's
    answer names its Python, so the second run sends it only what it can run."""
    data = fleet_run[0]
    compiled = [importlib.util.MAGIC_NUMBER, *([magic_of(PYPY)] if PYPY else [])]
    hosts_magic = magic_of(bare_python())  # the hosts' python3: the same minor version as ours in CI
    for port, runs in recorded_stdin(data).items():
        first, second = [code_entries(split_parts(bundle)[1]) for _, bundle in runs]
        assert list(first) == compiled, port
        # the hosts' own entry: ours in CI, where /usr/bin/python3 is the venv's minor version (elsewhere
        # "auto" may have compiled it with a python3.N on PATH by the second run)
        assert list(second) == [hosts_magic] or hosts_magic not in compiled and list(second) == [], port
    known = json.loads((data / ".stage" / "host-pythons.json").read_text())
    python = subprocess.run([bare_python(), "-c", "import platform; print(platform.python_version())"],
                            capture_output=True, text=True).stdout.strip()
    assert known == {h.name: {"python": python, "magic": hosts_magic.hex(), "implementation": "cpython"}
                     for h in sshd_fleet.hosts}  # not broken


def test_each_run_tells_each_host_when_its_last_stored_sample_was_taken(fleet_run, run_fleetscope, sshd_fleet):
    """GPU accounting records that ended before it were stored by that run (the collector leaves them out).
    fleetscope looks the times up while Ansible starts and hands them to the action in a file."""
    data = fleet_run[0]
    # sshd port: accounting_since of each run, in order
    sent = {port: [args["accounting_since"] for args, _ in runs] for port, runs in recorded_stdin(data).items()}
    first_samples = {r["host"]: r["ts"] for r in sql_json(run_fleetscope, data, (
        "SELECT host, strftime(min(host_ts), '%Y-%m-%dT%H:%M:%SZ') AS ts FROM host_samples GROUP BY host"))}
    assert sent == {h.port: ["", first_samples[h.name]] for h in sshd_fleet.hosts}  # new hosts: every record
    assert not list((data / ".runner").glob("hints-*"))  # the hand-over file goes with its run
    # and so do Ansible's temporary folders, fleetscope's own (its exit skips the interpreter's teardown,
    # not the atexit handlers that remove them) and ansible-playbook's
    assert not list((data / ".runner" / "tmp").glob("ansible-local-*"))


def test_collect_runs_ansible_playbook_with_the_routing_kept_across_runs(fleet_run, run_fleetscope):
    """Both runs went through fleetscope's ansible-playbook (playbook_launcher): the first kept Ansible's
    builtin routing table parsed, the second read it back rather than parsing and writing it again."""
    data = fleet_run[0]
    (kept,) = (data / ".runner" / "yaml-cache").glob("ansible.builtin-*.marshal")
    (second,) = sql_json(run_fleetscope, data, "SELECT epoch(max(started_at)) AS t FROM runs")
    assert kept.stat().st_mtime < second["t"]
    commands = [json.loads(f.read_text())["command"] for f in (data / ".runner" / "artifacts").glob("*/command")]
    assert len(commands) == 2 and all(c[1].endswith("fleetscope/playbook_launcher.py") for c in commands)


def test_a_dynamic_inventory_runs_once_per_collect_and_its_hosts_come_from_ansible(sshd_fleet, run_fleetscope,
                                                                                    tmp_path):
    """`collect` takes the host list from Ansible as the play starts (playbook_launcher.install_play_hosts),
    instead of parsing the inventory a second time: an inventory script runs once per run, not twice."""
    runs = tmp_path / "script-runs"
    hostvars = {
        h.name: {"ansible_host": h.address, "ansible_port": h.port, "ansible_user": sshd_fleet.user,
                 "ansible_ssh_private_key_file": str(sshd_fleet.key), "ansible_python_interpreter": bare_python(),
                 "ansible_ssh_common_args": f"-o UserKnownHostsFile={sshd_fleet.known_hosts} -o IdentitiesOnly=yes"}
        for h in sshd_fleet.hosts}
    listing = {"lab": {"hosts": sorted(hostvars)}, "_meta": {"hostvars": hostvars}}
    script = tmp_path / "inventory.py"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"with open({str(runs)!r}, 'a') as f:\n    f.write(' '.join(sys.argv[1:]) + '\\n')\n"
        f"print(json.dumps({listing!r} if '--list' in sys.argv else {{}}))\n")
    script.chmod(0o755)
    data = tmp_path / "data"
    out = run_fleetscope("collect", "--inventory", str(script), "--data", str(data), "--no-report")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(hostvars)} hosts: {len(hostvars)} ok" in out.stdout
    assert runs.read_text().splitlines() == ["--list"]
    rows = sql_json(run_fleetscope, data, "SELECT host, status FROM host_status ORDER BY host")
    assert rows == [{"host": name, "status": "ok"} for name in sorted(hostvars)]
    assert not list((data / ".runner").glob("hosts-*"))  # the run's host list went with the run
