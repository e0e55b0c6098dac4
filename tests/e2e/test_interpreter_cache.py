"""A host's Python interpreter, when the inventory does not name it, is discovered by Ansible once and
remembered in Ansible's fact cache, which `fleetscope collect` keeps between runs: one SSH command less per
host and run. Where the remembered interpreter has gone, the action discovers it again. Real sshd."""

from __future__ import annotations

import json
import os
import time

from fleetscope.collect import drop_unreadable
from tests import faults
from tests.conftest import bare_python


def recordings(interpreter) -> int:
    return len(list(interpreter.parent.glob("stdin-*")))


def test_the_interpreter_is_discovered_once_then_when_it_is_gone_or_checked(sshd_fleet, tmp_path, run_fleetscope):
    node = sshd_fleet.hosts[0]
    first = faults.interpreter(tmp_path / "first", "record_stdin", bare_python())
    second = faults.interpreter(tmp_path / "second", "record_stdin", bare_python())
    inventory = tmp_path / "inventory.ini"
    # no ansible_python_interpreter: discovered, from these two in this order
    inventory.write_text(
        f"[lab]\n{node.name} ansible_host={node.address} ansible_port={node.port} ansible_user={sshd_fleet.user} "
        f"ansible_ssh_private_key_file={sshd_fleet.key} "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={sshd_fleet.known_hosts}' "
        f"ansible_interpreter_python_fallback=\"['{first}', '{second}']\"\n")
    data = tmp_path / "data"

    def collect():
        proc = run_fleetscope("collect", "--data", str(data), "--inventory", str(inventory), "--no-report")
        assert proc.returncode == 0 and "1 ok" in proc.stdout, proc.stdout + proc.stderr

    def remembered():
        (cached,) = (data / ".runner" / "fact_cache").iterdir()  # Ansible's own format: look for the paths
        found = [str(p) for p in (first, second) if json.dumps(str(p))[1:-1] in cached.read_text()]
        assert len(found) == 1, cached.read_text()
        return found[0]

    collect()  # discovered: the first of the list
    assert (recordings(first), recordings(second), remembered()) == (1, 0, str(first))
    first.unlink()  # the host's Python moved
    collect()  # the remembered one is gone (exit status 127): discovered again, and remembered
    assert (recordings(second), remembered()) == (1, str(second))
    faults.interpreter(tmp_path / "first", "record_stdin", bare_python())  # back, and first in the list again
    collect()  # not discovered again: the remembered interpreter still runs
    assert (recordings(first), recordings(second), remembered()) == (1, 2, str(second))
    check = run_fleetscope("hosts", "check", "--data", str(data), "-i", str(inventory))
    assert check.returncode == 0, check.stdout + check.stderr
    assert (recordings(first), remembered()) == (2, str(first))  # `hosts check` looks afresh, and remembers
    collect()  # and collect uses what the check found
    assert (recordings(first), recordings(second), remembered()) == (3, 2, str(first))


def test_a_cache_file_this_run_left_half_written_is_removed(tmp_path):
    """Ansible renames a cache file into place even when writing it failed (a full disk); the next run would
    stop at reading it, for every host. collect removes what it wrote that is not whole JSON."""
    (tmp_path / "s1_whole").write_text('{"__payload__": "{}"}')
    (tmp_path / "s1_cut").write_text('{"__payload__": "{')
    (tmp_path / "s1_older").write_text("{")  # not this run's: not read at all
    day_ago = time.time() - 86400
    os.utime(tmp_path / "s1_older", (day_ago, day_ago))
    drop_unreadable(tmp_path, time.time() - 60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s1_older", "s1_whole"]


def test_host_names_that_are_no_file_names_and_a_damaged_cache_file_cost_no_host_its_data(
        sshd_fleet, tmp_path, run_fleetscope):
    """Ansible's jsonfile fact cache names a host's file after the host: a name of 253 bytes or more ("File
    name too long") or with a "/" failed every host of the run, and so did one damaged file an earlier run
    left (a full disk, a killed run). fleetscope's cache plugin hashes such names and reads a damaged file as
    missing: the host's interpreter is discovered again."""
    long_name, slashed = "n" * 260, "rack1/gpu01"
    names = [long_name, slashed, "plain"]
    hosts = {}
    for name, node in zip(names, sshd_fleet.hosts):
        hosts[name] = {"ansible_host": node.address, "ansible_port": node.port, "ansible_user": sshd_fleet.user,
                       "ansible_ssh_private_key_file": str(sshd_fleet.key),
                       "ansible_ssh_common_args": f"-o UserKnownHostsFile={sshd_fleet.known_hosts}",
                       "ansible_interpreter_python_fallback": [bare_python()]}  # discovered: cached
    inventory = tmp_path / "inventory.yml"  # YAML: an INI host name cannot hold the "/"
    inventory.write_text(json.dumps({"lab": {"hosts": hosts}}))
    data = tmp_path / "data"

    def collect():
        proc = run_fleetscope("collect", "--data", str(data), "--inventory", str(inventory), "--no-report")
        assert proc.returncode == 0 and "3 ok" in proc.stdout, proc.stdout + proc.stderr
        return proc

    collect()
    cache = data / ".runner" / "fact_cache"
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 3 and "s1_plain" in files, files
    # a damaged file from an earlier run (not this one's: drop_unreadable leaves it), for every host
    hour_ago = time.time() - 3600
    for path in cache.iterdir():
        path.write_text('{"__payload__": "{"discovered_interpreter_python": "/usr/bin/pyth')
        os.utime(path, (hour_ago, hour_ago))
    collect()  # every host ok: each damaged file read as missing, the interpreter rediscovered and kept again
    assert sorted(p.name for p in cache.iterdir()) == files
    assert all(json.loads(p.read_text()) for p in cache.iterdir())
