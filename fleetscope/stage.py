"""Stage the collector for shipping: the module imports it as ansible.module_utils.fleetscope_collectors.

Ansible packs module_utils into the module it sends to each host (AnsiballZ), so staging the package
under that name is all it takes for a host with only python3 to run it. nvidia-ml-py's pynvml.py is pure
Python and travels with it as `pynvml_shipped`, so a host with the driver but no pynvml still reads NVML.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import collectors

PACKAGE = "fleetscope_collectors"


def stage_module_utils(stage_root: Path, ship_pynvml: bool = True) -> Path:
    """Write <stage_root>/module_utils/fleetscope_collectors/ and return the module_utils folder."""
    module_utils = Path(stage_root) / "module_utils"
    tmp = Path(stage_root) / f".{PACKAGE}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    source = Path(collectors.__file__).resolve().parent
    for f in source.glob("*.py"):
        if f.name != "pynvml_shipped.py":
            shutil.copyfile(f, tmp / f.name)
    if ship_pynvml:
        try:
            import importlib.util

            spec = importlib.util.find_spec("pynvml")
            if spec and spec.origin:
                shutil.copyfile(spec.origin, tmp / "pynvml_shipped.py")
        except ImportError:
            pass
    module_utils.mkdir(parents=True, exist_ok=True)
    dest = module_utils / PACKAGE
    old = module_utils / f".{PACKAGE}.old"
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return module_utils
