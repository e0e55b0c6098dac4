"""A fleet of two Pythons over real sshd: one host runs the controller's CPython, the other PyPy (Debian's
pypy3, which .ci/run installs), and the controller compiles bytecode for both (collect.bytecode_pythons).
The first run sends both hosts every entry; each answer names its Python, and the second run sends each
host only the bytecode it can run. Both collect whole documents either way."""

from __future__ import annotations

import json
import sys

import pytest

from fleetscope.stage import code_entries, split_parts
from tests import faults
from tests.collectors.test_bootstrap import PYPY
from tests.conftest import bare_python, magic_of, sql_json


def sent(recorder) -> list[list[bytes]]:
    """Per run, in order: the magic numbers of the package's bytecode entries the host received."""
    return [list(code_entries(split_parts(bundle)[1])) for _, _, bundle in faults.recorded(recorder.parent)]


@pytest.mark.skipif(PYPY is None, reason="no pypy3 here (.ci/run installs it)")
def test_each_host_of_a_mixed_fleet_gets_the_bytecode_of_its_own_python(sshd_fleet, tmp_path, run_fleetscope):
    cpython = faults.interpreter(tmp_path / "cpython", "record_stdin", bare_python())
    pypy = faults.interpreter(tmp_path / "pypy", "record_stdin", PYPY)
    lines = []
    for name, node, python in (("cpython", sshd_fleet.hosts[0], cpython), ("pypy", sshd_fleet.hosts[1], pypy)):
        lines.append(f"{name} ansible_host={node.address} ansible_port={node.port} ansible_user={sshd_fleet.user} "
                     f"ansible_ssh_private_key_file={sshd_fleet.key} ansible_python_interpreter={python} "
                     f"ansible_ssh_common_args='-o UserKnownHostsFile={sshd_fleet.known_hosts}'")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[lab]\n" + "\n".join(lines) + "\n")
    config = tmp_path / "fleetscope.toml"
    config.write_text(f"[collect]\nbytecode_pythons = {json.dumps([PYPY])}\n")  # named: no 'auto' lookups
    data = tmp_path / "data"
    for _ in range(2):
        proc = run_fleetscope("collect", "--config", str(config), "--data", str(data), "--inventory",
                              str(inventory), "--no-report")
        assert proc.returncode == 0 and "2 ok" in proc.stdout, proc.stdout + proc.stderr
    ours, theirs = magic_of(bare_python()), magic_of(PYPY)
    compiled = [magic_of(sys.executable), theirs]
    assert sent(cpython) == [compiled, [m for m in compiled if m == ours]]
    assert sent(pypy) == [compiled, [theirs]]
    known = json.loads((data / ".stage" / "host-pythons.json").read_text())
    assert known["pypy"]["magic"] == theirs.hex() and known["pypy"]["python"].startswith("3.")
    rows = sql_json(run_fleetscope, data, "SELECT host, status, errors, count(*) AS n FROM host_status "
                                          "GROUP BY ALL ORDER BY host")  # whole documents, every subsystem
    assert rows == [{"host": "cpython", "status": "ok", "errors": 0, "n": 2},
                    {"host": "pypy", "status": "ok", "errors": 0, "n": 2}]
