"""Load the report's SQL files (``reports/queries/<name>.sql``) and run them with bound parameters.

``_prepare.sql`` creates the temp tables (``report_*``) the page queries share; ``_cleanup.sql`` drops
them. ``prepared(con)`` brackets a build with the two."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional

QUERIES = Path(__file__).with_name("queries")


@functools.lru_cache(maxsize=None)
def load(name: str) -> str:
    """The text of ``queries/<name>.sql``."""
    return (QUERIES / f"{name}.sql").read_text(encoding="utf-8")


def fetch(con, name: str, params: Optional[Mapping[str, Any]] = None) -> List[Dict[str, Any]]:
    """Run query ``name`` with ``params`` bound as ``$name`` parameters; rows as dicts."""
    cur = con.execute(load(name), dict(params) if params else None)
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, row)) for row in cur.fetchall()]


@contextlib.contextmanager
def prepared(con) -> Iterator[None]:
    """The report_* temp tables of ``_prepare.sql`` on ``con`` while the block runs; dropped after it."""
    con.execute(load("_prepare"))
    try:
        yield
    finally:
        con.execute(load("_cleanup"))
