"""Ctrl-C and SIGTERM while DuckDB runs a query.

fleetscope turns both signals into KeyboardInterrupt (exit 130, "interrupted"). A signal that comes while
DuckDB runs a query is taken by DuckDB: it stops the query and raises RuntimeError("Query interrupted") or
InterruptException, both an Exception. A handler that takes any Exception as a failure (a rollup that
failed, a run that could not be stored, the report) then went on working after Ctrl-C, or exited with a
traceback and a failure's status. Such handlers call ``reraise`` first.
"""

from __future__ import annotations

import sys


def query_interrupted(error: BaseException) -> bool:
    """Whether ``error`` is DuckDB's word that a signal stopped its query."""
    duckdb = sys.modules.get("duckdb")  # not imported: no DuckDB query ran
    if duckdb is not None and isinstance(error, duckdb.InterruptException):
        return True
    return isinstance(error, RuntimeError) and str(error).startswith("Query interrupted")


def reraise(error: BaseException) -> None:
    """KeyboardInterrupt, where ``error`` is a query a signal stopped (query_interrupted); else nothing."""
    if query_interrupted(error):
        raise KeyboardInterrupt from error
