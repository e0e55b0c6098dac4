"""What the Ansible inventory says about each host, for the report: its address, its groups and the variables
of the report's extra host columns (report.host_columns).

The warehouse stores what the hosts say about themselves; what people say about the hosts (owner=, room=,
comment= on a host line, in [group:vars] or in group_vars/ and host_vars/ beside the inventory; the groups a
host is in; the address it is reached at) stays in the inventory. The report reads it at build time, through
Ansible's own parser, so every inventory form works.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

from .text import clean_text, first_line

#: fleetscope's Ansible settings: ansible-playbook runs with them (collect.runner_env), and so does this
#: process's own reading of the inventory, so that the two agree (inventory plugins enabled, vault settings).
ANSIBLE_CFG = Path(__file__).resolve().parent.parent / "ansible.cfg"

#: Where a vault-encrypted value cannot be read; said with every such error.
VAULT_HINT = ("vault-encrypted variables need their password: set ANSIBLE_VAULT_PASSWORD_FILE (or "
              "ANSIBLE_VAULT_IDENTITY_LIST) in fleetscope's environment, e.g. on the cron line; fleetscope runs "
              "Ansible with its own ansible.cfg, so a vault_password_file set in yours is not read")


class InventoryError(RuntimeError):
    """The inventory could not be read."""


def with_vault_hint(message: str) -> str:
    """``message``, with VAULT_HINT where it is Ansible's word that a vault secret is missing."""
    lowered = message.lower()
    if "vault" in lowered and ("secret" in lowered or "password" in lowered) and VAULT_HINT not in message:
        return f"{message} ({VAULT_HINT})"
    return message


def foreign_ansible_config() -> Optional[str]:
    """The user's ANSIBLE_CONFIG where it names another file than fleetscope's, which Ansible then does not
    read (collect.runner_env), else None."""
    given = os.environ.get("ANSIBLE_CONFIG")
    if not given:
        return None
    path = Path(os.path.expanduser(given))
    if path.is_dir():  # Ansible reads its ansible.cfg
        path = path / "ansible.cfg"
    return None if path.resolve() == ANSIBLE_CFG else given


#: The vault secrets read once per process ([(vault id, secret)]), or the error reading them raised.
_vault: List[Any] = []
_loader_ready: List[bool] = []  # the collections' plugin loader is set up in this process


def _names_a_plugin(inventory: Path, most: int = 200) -> bool:
    """Whether a file of ``inventory`` (the file, or the YAML files of the folder and its subfolders, leaving
    out group_vars/, host_vars/ and hidden folders such as .git/; symlinked folders followed, as Ansible follows
    them, each once) configures an inventory plugin: a line that starts with ``plugin:`` in its first 4 KiB.
    At most ``most`` files are read."""
    if not inventory.is_dir():
        files = [inventory]
    else:
        files = []
        seen = {os.path.realpath(inventory)}
        for top, folders, names in os.walk(inventory, followlinks=True):
            folders[:] = sorted(f for f in folders if f not in ("group_vars", "host_vars") and not f.startswith("."))
            for folder in list(folders):  # a link back up (or to a folder already read) is read once
                real = os.path.realpath(os.path.join(top, folder))
                if real in seen:
                    folders.remove(folder)
                seen.add(real)
            files += [Path(top, n) for n in sorted(names) if n.endswith((".yml", ".yaml", ".config"))]
            if len(files) >= most:
                break
    for path in files[:most]:
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
        except OSError:
            continue
        if any(line.lstrip(b"\xef\xbb\xbf").startswith(b"plugin:") for line in head.splitlines()):
            return True
    return False


def _prepare_ansible(loader, inventory: Path) -> None:
    """Sets Ansible up in this process as ansible-playbook sets itself up, once: its collections' plugin loader
    where ``inventory`` names an inventory plugin (one named in full, ``ansible.builtin.constructed``, or from
    a collection, loads) and the vault secrets its settings name (ANSIBLE_VAULT_PASSWORD_FILE,
    ANSIBLE_VAULT_IDENTITY_LIST), given to ``loader``. Without them such an inventory lost its groups and
    addresses, and an encrypted value failed the report. A password file that cannot be read raises
    InventoryError, as it stops ansible-playbook."""
    import ansible.constants as C

    if not _loader_ready and _names_a_plugin(inventory):
        try:
            from ansible.plugins.loader import init_plugin_loader
        except ImportError:  # ansible-core before 2.15 set its loader up at import
            pass
        else:
            init_plugin_loader()  # speed: only here: plugins then load 0.3 s slower (collections searched)
        _loader_ready.append(True)
    if not _vault:
        _vault.append(_vault_secrets(loader) if C.DEFAULT_VAULT_PASSWORD_FILE or C.DEFAULT_VAULT_IDENTITY_LIST
                      else [])  # speed: no password given (most set-ups): ansible.cli's import costs 0.25 s
    if isinstance(_vault[0], InventoryError):
        raise _vault[0]
    loader.set_vault_secrets(_vault[0])


def _vault_secrets(loader):
    """The vault secrets Ansible's settings name, read as ansible-playbook reads them; InventoryError (returned)
    where a password file cannot be read."""
    import ansible.constants as C
    from ansible.cli import CLI
    from ansible.errors import AnsibleError

    try:  # 2.19 reads encrypted values through a context, set once per process
        from ansible.parsing.vault import VaultSecretsContext
    except ImportError:
        context = {}
    else:
        context = {"initialize_context": VaultSecretsContext.current(optional=True) is None}
    try:
        return CLI.setup_vault_secrets(loader, vault_ids=list(C.DEFAULT_VAULT_IDENTITY_LIST), auto_prompt=False,
                                       **context)
    except AnsibleError as e:
        return InventoryError(f"the vault password could not be read: {first_line(e)}")


def not_found(inventory) -> str:
    """What to say of an inventory path that is not there; a comma-separated host list (``-i 'gpu01,gpu02,'``,
    which ansible-playbook takes) is named as such: fleetscope keeps per-inventory state, and takes files."""
    said = f"inventory not found: {inventory}"
    if "," in Path(inventory).name:
        said += " (a comma-separated host list is not taken: put the hosts in an inventory file, or use --limit)"
    return said


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
        raise InventoryError(not_found(inventory))
    missing = missing_limit_file(limit)
    if missing:
        raise InventoryError(missing)
    if "ansible.constants" not in sys.modules:  # its settings are read once, at import: fleetscope's
        os.environ["ANSIBLE_CONFIG"] = str(ANSIBLE_CFG)
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
        _prepare_ansible(loader, inventory)
        manager = InventoryManager(loader=loader, sources=[str(inventory)])
        if limit:
            manager.subset(limit)
    except AnsibleError as e:
        what = with_vault_hint(first_line(e))
        raise InventoryError(f"{inventory}: {what} (Ansible's warnings above say why)"
                             if "parse" in what else f"{inventory}: {what}") from e
    except InventoryError as e:
        raise InventoryError(f"{inventory}: {e}") from e
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
    try:
        if isinstance(value, str):
            return clean_text(str(value))  # a vault-encrypted value is decrypted here
        if isinstance(value, (list, tuple)):
            return ", ".join(str(_plain(v)) for v in value)
        return str(value)
    except Exception:  # noqa: BLE001 - its secret missing or wrong (AnsibleError, or ReferenceError in 2.19)
        return ENCRYPTED


#: What a vault-encrypted value that cannot be decrypted reads as.
ENCRYPTED = "(vault-encrypted)"


#: Templates that call out (a lookup: a command, a secret store, DNS) are shown as written: a report must not
#: run them, without a time limit, every time it is built. These are seen at once; a lookup anywhere else (in a
#: variable the template names, written with a space) fails when the template asks the loader for it.
CALLS_OUT = ("lookup(", "query(", "q(")
#: The most seconds one reading of an inventory spends resolving templates (0.9 ms each with ansible-core
#: 2.19: 3,000 hosts with a templated address and column took 8 s more); the rest are shown as written.
TEMPLATE_BUDGET_S = 2.0


def resolved(value: Any, templar, budget: Optional[List[float]] = None) -> Any:
    """``value`` with its Jinja2 templates resolved as Ansible resolves them for the host (``templar`` holds
    the host's variables: ``ansible_host: "10.0.0.{{ n }}"``), else as it is: where it calls out (CALLS_OUT),
    fails (an undefined variable), or ``budget`` ([seconds left, templates left as written], shared by the
    caller's values) is spent; those are counted in ``budget[1]``."""
    if not isinstance(value, str):
        return value
    try:
        if not templar.is_possibly_template(value) or any(call in value for call in CALLS_OUT):
            return value
    except Exception:  # noqa: BLE001 - a vault-encrypted value, say: _plain says so
        return value
    if budget is not None and budget[0] <= 0:
        budget[1] += 1
        return value
    from ansible.plugins.loader import lookup_loader

    def refuse(name, *args, **kwargs):
        raise InventoryError(f"lookup {name!r} not run")

    began = time.monotonic()
    lookup_loader.get = refuse  # a lookup anywhere in it, nested variables included, fails the template
    try:
        return templar.template(value)
    except Exception:  # noqa: BLE001 - a lookup, an undefined variable, an error in the template: as written
        return value
    finally:
        del lookup_loader.get  # the loader's own method again
        if budget is not None:
            budget[0] -= time.monotonic() - began


def host_vars(inventory: Path, names: Iterable[str]) -> Dict[str, Dict[str, Any]]:
    """{host: {name: value}} for the variables ``names`` of every host of ``inventory``, as Ansible resolves
    them (host line over group vars over group_vars/ files; all of them, not only those set on the host).
    A variable a host does not have is left out of its mapping."""
    wanted = [str(n) for n in names]
    if not wanted:
        return {}
    return {host: info["vars"] for host, info in read_hosts(inventory, wanted).items()}


def read_hosts(inventory: Path, names: Iterable[str] = (),
               warn: Optional[Callable[[str], None]] = None) -> Dict[str, Dict[str, Any]]:
    """{host: {"address": ..., "groups": [...], "vars": {name: value}}} for every host of ``inventory``.

    ``address`` is the host's ``ansible_host`` as Ansible resolves it, else its inventory name; ``groups`` are
    the groups it is in, parents of its groups included, without ``all`` and ``ungrouped`` (Ansible's
    ``group_names``), sorted; ``vars`` holds the variables ``names`` the host has (as ``host_vars``).
    ``warn`` is told how many templates were left as written when TEMPLATE_BUDGET_S ran out."""
    wanted = [str(n) for n in names]
    inventory = Path(inventory)
    manager, loader = open_inventory(inventory)
    out: Dict[str, Dict[str, Any]] = {}
    budget: List[float] = [TEMPLATE_BUDGET_S, 0]
    for host, values, templar in host_variables(inventory, manager, loader):
        address = _plain(resolved(values.get("ansible_host"), templar, budget))  # no comparison before: 2.19 decrypts
        groups = sorted({g.name for g in host.get_groups()} - {"all", "ungrouped"})
        out[host.name] = {
            "address": str(address) if address not in (None, "") else clean_text(host.name),
            "groups": [clean_text(g) for g in groups],
            "vars": {n: _plain(resolved(values[n], templar, budget)) for n in wanted if n in values},
        }
    if budget[1] and warn is not None:
        many = f"{budget[1]:.0f} templated value{' is' if budget[1] == 1 else 's are'}"
        warn(f"{inventory}: {many} shown as written: resolving templates stops after {TEMPLATE_BUDGET_S:g} s "
             f"per reading of the inventory; give those hosts plain values")
    return out


def host_variables(inventory: Path, manager, loader):
    """(host, its variables, a Templar over them) for each host of ``manager``, in the order Ansible lists
    them. InventoryError where Ansible cannot give them (a group_vars file it cannot read or
    decrypt), with VAULT_HINT where a vault secret is missing."""
    from ansible.errors import AnsibleError
    from ansible.template import Templar
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager

    try:
        variables = VariableManager(loader=loader, inventory=manager)
        HostVars(manager, variables, loader)  # hostvars[...] in a template, as a play has it (it sets itself up)
        out = []
        for host in manager.get_hosts("all"):
            values = variables.get_vars(host=host, include_hostvars=True)  # hostvars[...] in templates: no cost
            out.append((host, values, Templar(loader=loader, variables=values)))
        return out
    except AnsibleError as e:
        raise InventoryError(f"{inventory}: {with_vault_hint(first_line(e))}") from e
