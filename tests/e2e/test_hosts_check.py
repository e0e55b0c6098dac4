"""`fleetscope hosts check` against real sshd: a good host, a refused key, a host without python3; and the
table's columns from a host's document."""

from __future__ import annotations

import os
import subprocess

from fleetscope.collect import check_row
from tests.conftest import PROJECT, bare_python, fleetscope_bin


def test_check_reports_ssh_python_and_nvml_per_host(sshd_fleet, tmp_path):
    node = sshd_fleet.hosts[0]
    wrong_key = tmp_path / "wrong"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
    base = (f"ansible_host={node.address} ansible_port={node.port} ansible_user={sshd_fleet.user} "
            f"ansible_ssh_common_args='-o UserKnownHostsFile={sshd_fleet.known_hosts}'")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"[lab]\ngood {base} ansible_ssh_private_key_file={sshd_fleet.key} ansible_python_interpreter={bare_python()}\n"
        # its own SSH master: Ansible shares one per address, port and user, and riding on good's session it
        # would never present its key (the test failed now and then when good's master came up first)
        f"badkey {base} ansible_ssh_private_key_file={wrong_key} ansible_python_interpreter={bare_python()} "
        f"ansible_control_path=%(directory)s/badkey\n"
        f"nopython {base} ansible_ssh_private_key_file={sshd_fleet.key} ansible_python_interpreter=/no/python3\n"
        # become set for other playbooks (real-setups review: collect and check tried sudo on every such host)
        f"becomes {base} ansible_ssh_private_key_file={sshd_fleet.key} ansible_python_interpreter={bare_python()} "
        f"ansible_become=true ansible_become_user=nobody ansible_become_exe=/no/sudo\n")
    proc = subprocess.run([*fleetscope_bin(), "hosts", "check", "-i", str(inventory), "--data", str(tmp_path / "d")],
                          cwd=PROJECT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp_path / "cp")))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("("))
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")] for line in lines[2:end]}
    details = dict(line.strip().split(": ", 1) for line in lines[end + 1:])
    version = subprocess.run([bare_python(), "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True).stdout.strip()
    assert rows["good"][1:6] == ["ok", "ok", version, "no NVIDIA driver loaded (no /proc/driver/nvidia/version)",
                                 "all"]  # this machine's /proc hides no process
    assert rows["badkey"][1:3] == ["unreachable", "failed"] and "Permission denied" in details["badkey"]
    assert rows["nopython"][1:3] == ["failed", "ok"] and "/no/python3" in details["nopython"]
    assert rows["becomes"][1:3] == ["ok", "ok"], details.get("becomes")
    assert "good" not in details
    assert not (tmp_path / "d" / "spool").exists(), "check stores nothing"


def test_a_host_whose_proc_hides_other_users_processes_is_named_with_the_remedy():
    doc = {"host": {"python": "3.11.2", "nvidia_driver": "580.65.06"},
           "gpus": {"available": True, "devices": [{}, {}]}, "processes": {"others_hidden": True}, "errors": []}
    row = check_row(doc)
    assert (row["python"], row["nvml"], row["processes"]) == ("3.11.2", "2 GPU(s), driver 580.65.06",
                                                            "own only (hidepid)")
    assert "hidepid=" in row["message"] and "gid=" in row["message"]
    doc["processes"]["others_hidden"] = False
    assert check_row(doc)["processes"] == "all" and check_row(doc)["message"] == ""
    del doc["processes"]["others_hidden"]  # a collector that cannot tell: nothing said
    assert check_row(doc)["processes"] == "" and check_row(doc)["message"] == ""
    doc["processes"] = None  # the subsystem failed: its error is the message
    doc["errors"] = [{"subsystem": "processes", "message": "boom"}]
    assert check_row(doc)["processes"] == "" and check_row(doc)["message"] == "processes: boom"


def test_a_gpu_host_whose_kernel_log_the_account_may_not_read_is_named_with_the_remedy():
    reason = "the kernel log is not readable by this account (kernel.dmesg_restrict=1: root or CAP_SYSLOG)"
    doc = {"host": {"python": "3.11.2", "nvidia_driver": "580.65.06"}, "gpus": {"available": True, "devices": [{}]},
           "processes": {"others_hidden": False}, "errors": [],
           "xid": {"available": False, "reason": reason, "events": [], "truncated": False}}
    message = check_row(doc)["message"]
    assert message.startswith(f"xid: {reason}: the NVIDIA driver's Xid errors") and "CAP_SYSLOG" in message
    doc["xid"] = {"available": True, "reason": None, "events": [], "truncated": False}
    assert check_row(doc)["message"] == ""
    doc["xid"] = None  # no driver: nothing to read, nothing said
    assert check_row(doc)["message"] == ""
    doc["xid"] = {"available": False, "reason": "no /dev/kmsg (a container?)", "events": [], "truncated": False}
    assert check_row(doc)["message"].endswith("Xid errors (a GPU fallen off the bus, ECC) will not be read")
