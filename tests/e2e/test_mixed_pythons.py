"""A fleet of two Pythons over real sshd: one host runs the controller's CPython, the other PyPy (Debian's
pypy3, which .ci/run installs). With collect.bytecode_pythons' default, "auto", the first run has bytecode
only for the controller's own Python and sends it to both; each answer names its Python (version, magic
number, implementation), so the second run's bundle also holds what the controller's pypy3.N compiled, and
each host gets only the bytecode it can run. Both collect whole documents either way."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from fleetscope.stage import code_entries, split_parts
from tests import faults
from tests.collectors.test_bootstrap import PYPY
from tests.conftest import bare_python, magic_of, sql_json


def sent(recorder) -> list[list[bytes]]:
    """Per run, in order: the magic numbers of the package's bytecode entries the host received."""
    return [list(code_entries(split_parts(bundle)[1])) for _, _, bundle in faults.recorded(recorder.parent)]


def _versioned(python):
    """The pypy3.N beside pypy3 that "auto" looks for, where PATH has it (Debian's pypy3 package installs it)."""
    if python is None:
        return None
    minor = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True).stdout.strip()
    return shutil.which(f"pypy{minor}")


PYPY_N = _versioned(PYPY)


@pytest.mark.skipif(PYPY_N is None, reason="no pypy3 and pypy3.N here (.ci/run installs them)")
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
    config.write_text('[collect]\nbytecode_pythons = ["auto"]\n')  # the default, said
    data = tmp_path / "data"
    for _ in range(2):
        proc = run_fleetscope("collect", "--config", str(config), "--data", str(data), "--inventory",
                              str(inventory), "--no-report")
        assert proc.returncode == 0 and "2 ok" in proc.stdout, proc.stdout + proc.stderr
    ours, theirs = magic_of(bare_python()), magic_of(PYPY)
    controller = magic_of(sys.executable)
    # first run: nothing known, only the controller's own bytecode, sent whole; second: each host its own
    # (the CPython host's python3 is the controller's minor version in CI; elsewhere "auto" compiled for it
    # where a python3.N for it is on PATH, and where none is the host gets no bytecode and runs the sources)
    first, second = sent(cpython)
    assert first == [controller]
    assert second == [ours] or ours != controller and second == []
    assert sent(pypy) == [[controller], [theirs]]
    known = json.loads((data / ".stage" / "host-pythons.json").read_text())
    assert known["pypy"]["magic"] == theirs.hex() and known["pypy"]["python"].startswith("3.")
    assert known["pypy"]["implementation"] == "pypy" and known["cpython"]["implementation"] == "cpython"
    rows = sql_json(run_fleetscope, data, "SELECT host, status, errors, count(*) AS n FROM host_status "
                                          "GROUP BY ALL ORDER BY host")  # whole documents, every subsystem
    assert rows == [{"host": "cpython", "status": "ok", "errors": 0, "n": 2},
                    {"host": "pypy", "status": "ok", "errors": 0, "n": 2}]
