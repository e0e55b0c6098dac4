"""What the Ansible inventory says about each host, for the report: its address, its groups and the variables
of the report's extra host columns (report.host_columns).

The warehouse stores what the hosts say about themselves; what people say about the hosts (owner=, room=,
comment= on a host line, in [group:vars] or in group_vars/ and host_vars/ beside the inventory; the groups a
host is in; the address it is reached at) stays in the inventory. The report reads it at build time, through
Ansible's own parser, so every inventory form works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, Optional

from .text import clean_text, first_line


class InventoryError(RuntimeError):
    """The inventory could not be read."""


def missing_limit_file(limit: Optional[str]) -> Optional[str]:
    """Why a ``--limit @file`` cannot be read (Ansible's own message names the inventory and shows the path
    as bytes), or None."""
    if limit and limit.startswith("@") and not Path(limit[1:]).is_file():
        return f"--limit file not found: {limit[1:]}"
    return None


def open_inventory(inventory: Path, limit: Optional[str] = None):
    """Ansible's InventoryManager (and its DataLoader) for ``inventory``, after ``limit``. Raises InventoryError
    where the file is missing, Ansible can parse none of it (which Ansible itself only warns about, leaving
    an empty inventory) or the limit cannot be read (``@file``)."""
    inventory = Path(inventory)
    if not inventory.exists():
        raise InventoryError(f"inventory not found: {inventory}")
    missing = missing_limit_file(limit)
    if missing:
        raise InventoryError(missing)
    import ansible.constants as C
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    # Strict where no source parsed at all (Ansible would only warn, and go on with no hosts); a folder whose
    # other sources parse is taken, as ansible-playbook takes it. This process's parse only.
    strict = C.INVENTORY_UNPARSED_IS_FAILED
    C.INVENTORY_UNPARSED_IS_FAILED = True
    try:
        loader = DataLoader()
        manager = InventoryManager(loader=loader, sources=[str(inventory)])
        if limit:
            manager.subset(limit)
    except AnsibleError as e:
        what = first_line(e)
        raise InventoryError(f"{inventory}: {what} (Ansible's warnings above say why)"
                             if "parse" in what else f"{inventory}: {what}") from e
    finally:
        C.INVENTORY_UNPARSED_IS_FAILED = strict
    return manager, loader


def host_names(manager, quiet_limit: bool = False) -> list:
    """The names of ``manager``'s hosts after its limit, in the inventory's order. ``quiet_limit``: no warning
    for a limit pattern that matches nothing, for a caller whose Ansible run says it already."""
    import ansible.constants as C

    mismatch = C.HOST_PATTERN_MISMATCH
    if quiet_limit and mismatch == "warning":
        C.HOST_PATTERN_MISMATCH = "ignore"
    try:
        return [h.name for h in manager.get_hosts("all")]  # the limit is applied here, not by subset()
    finally:
        C.HOST_PATTERN_MISMATCH = mismatch


def _plain(value: Any) -> Any:
    """Ansible's tagged values as plain Python: numbers stay numbers (they sort as numbers), text is text."""
    if value is None or isinstance(value, bool):
        return None if value is None else bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return clean_text(str(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(str(_plain(v)) for v in value)
    return str(value)


def host_vars(inventory: Path, names: Iterable[str]) -> Dict[str, Dict[str, Any]]:
    """{host: {name: value}} for the variables ``names`` of every host of ``inventory``, as Ansible resolves
    them (host line over group vars over group_vars/ files; all of them, not only those set on the host).
    A variable a host does not have is left out of its mapping."""
    wanted = [str(n) for n in names]
    if not wanted:
        return {}
    return {host: info["vars"] for host, info in read_hosts(inventory, wanted).items()}


def read_hosts(inventory: Path, names: Iterable[str] = ()) -> Dict[str, Dict[str, Any]]:
    """{host: {"address": ..., "groups": [...], "vars": {name: value}}} for every host of ``inventory``.

    ``address`` is the host's ``ansible_host`` as Ansible resolves it, else its inventory name; ``groups`` are
    the groups it is in, parents of its groups included, without ``all`` and ``ungrouped`` (Ansible's
    ``group_names``), sorted; ``vars`` holds the variables ``names`` the host has (as ``host_vars``)."""
    wanted = [str(n) for n in names]
    inventory = Path(inventory)
    from ansible.errors import AnsibleError
    from ansible.vars.manager import VariableManager

    manager, loader = open_inventory(inventory)
    try:
        variables = VariableManager(loader=loader, inventory=manager)
        out: Dict[str, Dict[str, Any]] = {}
        for host in manager.get_hosts("all"):
            values = variables.get_vars(host=host, include_hostvars=False)
            address = values.get("ansible_host")
            groups = sorted({g.name for g in host.get_groups()} - {"all", "ungrouped"})
            out[host.name] = {
                "address": str(_plain(address)) if address not in (None, "") else clean_text(host.name),
                "groups": [clean_text(g) for g in groups],
                "vars": {n: _plain(values[n]) for n in wanted if n in values},
            }
        return out
    except AnsibleError as e:
        raise InventoryError(f"{inventory}: {e}") from e
