"""The settings file (fleetscope.toml): one home for every tunable, each key optional.

Lookup order for the file: --config, $FLEETSCOPE_CONFIG, ./fleetscope.toml, <project>/fleetscope.toml.
The data directory can also be moved with $FLEETSCOPE_DATA (or --data), the site with $FLEETSCOPE_OUT (or
--out).
Relative paths in the file are relative to the file's own folder.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from reports.defaults import DEFAULT_SETTINGS as REPORT_DEFAULTS

#: Keys of the report's defaults that are [rollup]'s settings, passed to the report by the CLI.
FROM_ROLLUP = ("held_mem_mib", "max_interval_s", "hourly_days")

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Every key with its default; docs/settings.md documents each one (a test keeps the two in step).
DEFAULTS: dict[str, dict] = {
    "collect": {
        "inventory": "inventory.ini",
        "forks": 50,
        "host_timeout_s": 30,
        "connect_timeout_s": 10,
        "top_processes": 15,
        "ship_pynvml": True,
        "keep_artifacts": 3,
        "bytecode_pythons": ["auto"],
        "ssh_warmup": True,
    },
    "storage": {
        "data_dir": "data",
        "keep_spool": False,
    },
    "rollup": {
        "raw_days": 30,
        "hourly_days": 365,
        "daily_days": 0,
        "max_interval_s": 600,
        "held_mem_mib": 1024,
        "every_minutes": 60,
    },
    # The report's own keys live with the report (reports/defaults.py); held_mem_mib, max_interval_s and
    # hourly_days come from [rollup]. out_dir and user_groups are paths the CLI reads (build_site reads no
    # settings file of its own: it is given the site's folder and the {user: group} mapping).
    "report": {"out_dir": "site", "user_groups": "",
               **{k: v for k, v in REPORT_DEFAULTS.items() if k not in FROM_ROLLUP}},
    "bookings": {
        "sources": [],
        "timeout_s": 10,
        "max_gpus_per_user": 0,
        "max_hours": 0.0,
    },
}


#: The least a number may be, where it is not 0: a timeout of -5 s or 0 forks is a mistake in the file, and
#: found when it is read (exit 2), not as every host failing. Every other number must be >= 0.
AT_LEAST_ONE = {
    ("collect", "forks"), ("collect", "host_timeout_s"), ("collect", "connect_timeout_s"),
    ("collect", "keep_artifacts"), ("rollup", "max_interval_s"), ("bookings", "timeout_s"),
    ("report", "timeline_hours"), ("report", "max_points"), ("report", "heatmap_columns"),
    ("report", "status_history"), ("report", "problem_hours"), ("report", "stale_minutes"),
}
#: Shares of 100.
PERCENT = {("report", "busy_threshold_pct"), ("report", "disk_full_pct")}
#: Lists whose default is empty, and what their items must be.
LIST_ITEMS = {("bookings", "sources"): str, ("report", "host_columns"): str}


class SettingsError(ValueError):
    """The settings file is unreadable or holds a key or value we do not know."""


@dataclass
class Settings:
    values: dict = field(default_factory=lambda: copy.deepcopy(DEFAULTS))
    source: Path | None = None
    base_dir: Path = PROJECT_DIR

    def get(self, section: str, key: str):
        return self.values[section][key]

    def path(self, section: str, key: str) -> Path:
        return self.resolve(str(self.values[section][key]))

    def resolve(self, value: str) -> Path:
        """A path as the settings file means it: ``~`` expanded, a relative one relative to its folder."""
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def data_dir(self) -> Path:
        return self.path("storage", "data_dir")

    @property
    def out_dir(self) -> Path:
        return self.path("report", "out_dir")


def find_config(explicit: str | os.PathLike | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("FLEETSCOPE_CONFIG")
    if env:
        return Path(env)
    for candidate in (Path.cwd() / "fleetscope.toml", PROJECT_DIR / "fleetscope.toml"):
        if candidate.is_file():
            return candidate
    return None


def load(config: str | os.PathLike | None = None) -> Settings:
    """Read the settings file (if any) over the defaults, then the environment overrides."""
    settings = Settings()
    path = find_config(config)
    if path is not None:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError as e:
            raise SettingsError(f"settings file not found: {path}") from e
        except tomllib.TOMLDecodeError as e:
            raise SettingsError(f"{path}: not valid TOML: {e}") from e
        except UnicodeDecodeError as e:
            raise SettingsError(f"{path}: not UTF-8 text: {e}") from e
        except OSError as e:  # a folder, no permission
            raise SettingsError(f"cannot read the settings file {path}: {e.strerror or e}") from e
        _merge(settings.values, raw, path)
        settings.source = path
        settings.base_dir = path.resolve().parent
    env_data = os.environ.get("FLEETSCOPE_DATA")
    if env_data:
        settings.values["storage"]["data_dir"] = str(Path(env_data).resolve())
    env_out = os.environ.get("FLEETSCOPE_OUT")
    if env_out:
        settings.values["report"]["out_dir"] = str(Path(env_out).resolve())
    return settings


def _merge(values: dict, raw: dict, path: Path) -> None:
    for section, keys in raw.items():
        if section not in values or not isinstance(keys, dict):
            raise SettingsError(f"{path}: unknown section [{section}] (known: {', '.join(values)})")
        for key, value in keys.items():
            if key not in values[section]:
                known = ", ".join(values[section])
                raise SettingsError(f"{path}: unknown key {section}.{key} (known: {known})")
            default = values[section][key]
            if isinstance(default, bool) != isinstance(value, bool) or (
                not isinstance(value, type(default)) and not (isinstance(default, float) and isinstance(value, int))
            ):
                raise SettingsError(
                    f"{path}: {section}.{key} must be {type(default).__name__}, got {value!r}"
                )
            item = type(default[0]) if isinstance(default, list) and default else LIST_ITEMS.get((section, key))
            if item is not None and not all(isinstance(v, item) for v in value):
                raise SettingsError(f"{path}: {section}.{key} must be a list of {item.__name__}, got {value!r}")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                least = 1 if (section, key) in AT_LEAST_ONE else 0
                if value < least or ((section, key) in PERCENT and value > 100):
                    bounds = "between 0 and 100" if (section, key) in PERCENT else f">= {least}"
                    raise SettingsError(f"{path}: {section}.{key} must be {bounds}, got {value!r}")
            values[section][key] = value
