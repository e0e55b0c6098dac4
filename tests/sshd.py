"""Real OpenSSH servers on loopback addresses, for the end-to-end tests.

Each server listens on its own 127.0.0.x address with a host key generated in a temp dir; the client key,
authorized_keys and known_hosts live there too, so nothing of the user's ~/.ssh is read or written and
host key checking stays on exactly as in production.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


@dataclass
class SshHost:
    name: str
    address: str
    port: int
    process: subprocess.Popen | None = None

    def inventory_line(self, key: Path, known_hosts: Path, python: str, user: str) -> str:
        common = f"-o UserKnownHostsFile={known_hosts} -o IdentitiesOnly=yes"
        return (
            f"{self.name} ansible_host={self.address} ansible_port={self.port} ansible_user={user} "
            f"ansible_ssh_private_key_file={key} ansible_python_interpreter={python} "
            f"ansible_ssh_common_args='{common}'"
        )


def available() -> str | None:
    """None when sshd can run here, else why not (for pytest.skip)."""
    if not os.path.exists(SSHD):
        return "sshd is not installed (apt-get install openssh-server; .ci/run does it)"
    if not os.path.exists(SSH_KEYGEN):
        return "ssh-keygen is not installed"
    return None


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def wait_listening(address: str, port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection((address, port), timeout=0.5) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"sshd on {address}:{port} did not start")
        time.sleep(0.1)


class SshdFleet:
    """Start `count` sshd processes on 127.0.0.2, 127.0.0.3, ...; stop them with stop()."""

    def __init__(self, root: Path, count: int = 3, first_octet: int = 2):
        self.root = Path(root)
        self.user = getpass.getuser()
        self.key = self.root / "client_ed25519"
        self.known_hosts = self.root / "known_hosts"
        self.hosts = [
            SshHost(f"node{i + 1}", f"127.0.0.{first_octet + i}", 0) for i in range(count)
        ]

    def start(self) -> SshdFleet:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        _keygen(self.key)
        (self.root / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        os.chmod(self.root / "authorized_keys", 0o600)
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege-separation dir sshd insists on
        known = []
        for host in self.hosts:
            host_key = self.root / f"hostkey_{host.name}"
            _keygen(host_key)
            host.port = free_port(host.address)
            config = self.root / f"sshd_{host.name}.conf"
            config.write_text(
                "\n".join([
                    f"ListenAddress {host.address}:{host.port}",
                    f"HostKey {host_key}",
                    f"PidFile {self.root / f'sshd_{host.name}.pid'}",
                    f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
                    f"AllowUsers {self.user}",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "MaxStartups 50",
                    "LogLevel ERROR",
                    # A session's `bash -c` sources the user's ~/.bashrc when sshd starts it (Debian's bash),
                    # unless SHLVL says it is a nested shell. The fleet stands for hosts, not for this
                    # machine's dotfiles: a pyenv init there costs every session 0.2 s of CPU on both ends.
                    "SetEnv SHLVL=1",
                    "",
                ])
            )
            log = open(self.root / f"sshd_{host.name}.log", "wb")  # noqa: SIM115 - lives with the process
            host.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
            known.append(f"[{host.address}]:{host.port} {host_key.with_suffix('.pub').read_text().strip()}")
        self.known_hosts.write_text("\n".join(known) + "\n")
        deadline = time.monotonic() + 20
        for host in self.hosts:
            wait_listening(host.address, host.port, deadline)
        return self

    def inventory(self, python: str, extra: list[str] = ()) -> str:
        lines = ["[lab]"]
        lines += [h.inventory_line(self.key, self.known_hosts, python, self.user) for h in self.hosts]
        lines += list(extra)
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        for host in self.hosts:
            if host.process and host.process.poll() is None:
                host.process.terminate()
                try:
                    host.process.wait(5)
                except subprocess.TimeoutExpired:
                    host.process.kill()


def _keygen(path: Path) -> None:
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "fleetscope-test", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)
