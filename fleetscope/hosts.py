"""`fleetscope hosts list|add|remove|check`: the inventory, kept by hand or by these commands alike.

Edits work on the INI text line by line, so comments, blank lines, group order and variables stay exactly
as the person wrote them; every edit is written atomically and checked by parsing the result with
Ansible's own inventory parser before it replaces the file. `check` runs the collector on each host for
the two facts that decide whether collection will work: can we log in and run python3, and does NVML
answer.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from .files import write_atomic
from .inventory import not_found

SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*(?:[#;].*)?$")
NAME_OK = re.compile(r"^[A-Za-z0-9_.:\[\]-]+$")  # a host name or pattern-free address, as Ansible reads it


class HostsError(ValueError):
    """A refused edit: the message says why; the inventory is unchanged."""


@dataclass
class HostLine:
    name: str
    group: str
    line: int  # 0-based index in the file


def _sections(lines: list[str]) -> list[tuple[str, int, int]]:
    """(section name, first line, end line exclusive) for each [section]; '' for lines before the first."""
    out, name, start = [], "", 0
    for i, line in enumerate(lines):
        m = SECTION.match(line)
        if m:
            out.append((name, start, i))
            name, start = m.group(1).strip(), i + 1
    out.append((name, start, len(lines)))
    return out


def host_lines(text: str) -> list[HostLine]:
    """Every host line of an INI inventory (not [x:vars] or [x:children] sections, not comments)."""
    lines = text.splitlines()
    found = []
    for section, start, end in _sections(lines):
        if ":" in section:
            continue
        for i in range(start, end):
            stripped = lines[i].strip()
            if stripped and not stripped.startswith(("#", ";")):
                found.append(HostLine(stripped.split()[0], section or "ungrouped", i))
    return found


def _parse_check(path: Path, text: str) -> None:
    """Parse `text` as an inventory with Ansible; raise HostsError if Ansible refuses it. An inventory that
    does not parse as it is, before the edit, is said to be so (the edit is not to blame), under its own name."""
    import tempfile

    from .inventory import open_inventory

    if path.exists():
        try:
            open_inventory(path)[0].get_hosts("all")
        except Exception as e:  # noqa: BLE001 - as below
            raise HostsError(f"{path} does not parse as it is, before this edit: {e}; fix it by hand first "
                             f"(nothing was changed)") from e
    # its own suffix, which picks Ansible's parser as the file itself gets it (none: .ini)
    with tempfile.NamedTemporaryFile("w", prefix=f".{path.name}.edited-", suffix=path.suffix or ".ini", dir=path.parent,
                                     delete=True) as tmp:
        tmp.write(text)
        tmp.flush()
        try:
            open_inventory(Path(tmp.name))[0].get_hosts("all")
        except Exception as e:  # noqa: BLE001 - any refusal by Ansible means we must not write this
            raise HostsError(f"the edited inventory would not parse: {str(e).replace(tmp.name, str(path))}") from e


def _looks_ini(path: Path) -> bool:
    """Whether an inventory file reads as INI: a ``.ini`` file does; another is no script (``#!``, or a
    program) and its first line that is not blank or a comment is no YAML or JSON (``---``, ``{``, ``all:``,
    ``plugin: x``), comments after it left out (``[gpu]  # rack: 7``; an INI host line's ``name:port`` has no
    ``: `` before its variables). The execute bit says nothing: a file copied from a share may have it."""
    if path.suffix.lower() == ".ini":
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:  # a new inventory (add writes INI), or said by the edit itself (not writable, ...)
        return True
    if head.startswith((b"#!", b"\x7fELF")):
        return False
    for raw in head.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        line = re.split(r"\s[#;]", line, maxsplit=1)[0].rstrip()  # an INI comment after the line's content
        before_vars = line.split("=", 1)[0]
        return not (line == "---" or line.startswith(("{", "[{", "- ")) or (before_vars.endswith(":") and "[" not in
                    line and line.count(":") == 1) or ": " in before_vars)
    return True


@contextlib.contextmanager
def _editing(path: Path, must_exist: bool = True):
    """The inventory file to edit (a symlink's target: the link stays), held against other `hosts add` and
    `remove` runs until the edit is written (each reads, changes and writes the whole file: two at once lost
    one's change). Refuses what cannot be edited as INI text, and a file this user may not write (the
    rename that replaces it would go through all the same)."""
    real = Path(os.path.realpath(path))
    if real.is_dir() or real.suffix.lower() in (".yml", ".yaml", ".json", ".toml") or not _looks_ini(real):
        raise HostsError(f"{path}: only an INI inventory file can be edited (edit YAML inventories, inventory "
                         f"scripts and folders by hand)")
    if not real.exists():
        if must_exist:
            raise HostsError(not_found(path))
    elif not os.access(real, os.W_OK):
        raise HostsError(f"{real} is not writable by this user")
    # the lock is on the folder: no lock file to create, own, or be led elsewhere by a symlink
    try:
        fd = os.open(real.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise HostsError(f"cannot lock {real.parent} for the edit: {e.strerror or e}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield real
    finally:
        os.close(fd)


def _write(path: Path, text: str) -> None:
    """The edited inventory in place of the old: a new file renamed over it (a reader never sees half of
    it), with its permissions and owner; where this user cannot give the new file the owner the old one
    had (another user's file it may write through its group), the old file is rewritten instead, so that
    owner, group and ACLs stay (under the edit's lock; a reader may see it half-written for an instant)."""
    data = text.encode("utf-8")
    try:
        before = path.stat()
    except FileNotFoundError:
        before = None
    if before is None or os.geteuid() == 0 or (before.st_uid, before.st_gid) == (os.geteuid(), os.getegid()):
        write_atomic(path, data, keep_mode=True)
        return
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())


def _joined(lines: list[str], like: str) -> str:
    """The edited lines, with the line endings the file had (CRLF stays CRLF)."""
    end = "\r\n" if "\r\n" in like else "\n"
    return end.join(lines) + end


def add_host(path: Path, name: str, group: str = "ungrouped", variables: dict[str, str] | None = None) -> str:
    """Add `name` (with `variables`) at the end of [group], creating the group at the end if needed (and the
    file, if there is none)."""
    if not NAME_OK.match(name) or name.startswith("["):  # "[gpu]" would be a section header, not a host
        raise HostsError(f"not a valid host name: {name!r}")
    if not re.match(r"^[A-Za-z0-9_-]+$", group):
        raise HostsError(f"not a valid group name: {group!r}")
    with _editing(path, must_exist=False) as real:
        return _add(real, name, group, variables)


def _add(path: Path, name: str, group: str, variables: dict[str, str] | None) -> str:
    text = path.read_bytes().decode("utf-8") if path.exists() else ""  # bytes: CRLF stays to be seen
    groups = [h.group for h in host_lines(text) if h.name == name]
    if group in groups or (groups and group == "ungrouped"):  # ungrouped: no group asked for
        raise HostsError(f"{name} is already in [{'], ['.join(groups)}] of {path}")
    if groups and variables:  # a second line with variables would split them over two places
        raise HostsError(f"{name} is already in {path} ([{'], ['.join(groups)}]): to put it in [{group}] too, "
                         f"add it without --var (its variables stay on its line in [{groups[0]}])")
    parts = [name]
    for key, value in (variables or {}).items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise HostsError(f"not a valid variable name: {key!r}")
        parts.append(f"{key}={shlex.quote(str(value))}")
    new_line = " ".join(parts)
    lines = text.splitlines()
    target = [s for s in _sections(lines) if s[0] == group]
    if target:
        _, start, end = target[0]
        at = end
        # after the group's last host: blank lines and comments at its end belong to the next section
        while at > start and (not lines[at - 1].strip() or lines[at - 1].lstrip().startswith(("#", ";"))):
            at -= 1
        lines.insert(at, new_line)
    else:
        if lines and lines[-1].strip():
            lines.append("")
        lines += [f"[{group}]", new_line]
    new_text = _joined(lines, text)
    _parse_check(path, new_text)
    _write(path, new_text)
    return new_line


def remove_host(path: Path, name: str) -> int:
    """Remove every host line of `name`; returns how many. A group header left with nothing under it goes too
    (one with a comment stays); its [group:vars], [group:children] and host_vars stay untouched."""
    with _editing(path) as real:
        text = real.read_bytes().decode("utf-8")
        gone = {h.line for h in host_lines(text) if h.name == name}
        if not gone:
            raise HostsError(f"{name} is not in {path}")
        lines = text.splitlines()
        sections = _sections(lines)
        # groups Ansible needs declared: with vars or children of their own, or a child of another group
        needed = {name.split(":")[0] for name, _, _ in sections if ":" in name} | {
            lines[i].split()[0] for name, start, end in sections if name.endswith(":children")
            for i in range(start, end) if lines[i].strip() and not lines[i].lstrip().startswith(("#", ";"))}
        emptied = set()  # a group left with no host: its header goes too, with a blank line before it
        for name, start, end in sections:
            if name in needed:
                continue
            removed = [i for i in range(start, end) if i in gone]
            left = [i for i in range(start, end) if i not in gone and lines[i].strip()]
            if not start or not removed or any(not lines[i].lstrip().startswith(("#", ";")) for i in left):
                continue  # the lines before the first section, a group not edited, or one with hosts left
            if any(i < removed[0] for i in left):
                continue  # a comment under the header, before its hosts: the group's own, kept with it
            emptied.add(start - 1)  # comments after its hosts belong to the next section: they stay
            if start >= 2 and not lines[start - 2].strip():
                emptied.add(start - 2)
            elif start == 1:  # the file's first line: the blank lines it leaves would begin the file
                emptied.update(i for i in range(start, end) if not lines[i].strip())
        lines = [line for i, line in enumerate(lines) if i not in gone and i not in emptied]
        new_text = _joined(lines, text)
        _parse_check(real, new_text)
        _write(real, new_text)
        return len(gone)


def list_hosts(path: Path) -> list[dict]:
    """Each host as Ansible resolves it (inventory.read_hosts: templates, vault-encrypted values where the
    password is given): name, groups, address, port, user, connection, python."""
    from .inventory import InventoryError, read_hosts

    columns = {"port": ("ansible_port", ""), "user": ("ansible_user", ""), "connection": ("ansible_connection", "ssh"),
               "python": ("ansible_python_interpreter", "auto")}
    try:
        hosts = read_hosts(path, [var for var, _ in columns.values()],
                           warn=lambda m: print(f"warning: {m}", file=sys.stderr))
    except InventoryError as e:
        raise HostsError(str(e)) from e
    out = []
    for name, info in sorted(hosts.items()):
        row = {"host": name, "groups": ",".join(info["groups"]), "address": info["address"]}
        for column, (var, default) in columns.items():
            value = info["vars"].get(var, default)
            row[column] = "" if value is None else str(value)
        out.append(row)
    return out
