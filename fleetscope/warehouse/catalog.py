"""The catalog: DuckDB views named after the tables, over the Parquet files that hold the rows.

Parquet under <data>/<table>/date=YYYY-MM-DD/ is the storage of record. Readers (the report,
`fleetscope sql`) get an in-memory DuckDB with one view per table, so they never hold a lock on the
warehouse; <data>/fleet.duckdb carries the same views for anyone using DuckDB directly.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from pathlib import Path

import duckdb

from ..files import write_atomic
from ..interrupts import reraise
from ..text import first_line

SQL_DIR = Path(__file__).parent / "sql"
CATALOG_FILE = "fleet.duckdb"


def sql_file(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


#: DuckDB's reading of the declared tables, kept beside the SQL (declared_schemas; tests keep it in step).
SCHEMAS_FILE = SQL_DIR / "schemas.json"


def declared_sql() -> str:
    return sql_file("tables.sql") + "\n" + sql_file("rollup_tables.sql")


@functools.cache
def schemas() -> dict[str, list[tuple[str, str]]]:
    """{table: [(column, type), ...]} as declared in sql/tables.sql and sql/rollup_tables.sql, as DuckDB reads
    them. From sql/schemas.json where it was written for this SQL (its hash): running the declarations in
    DuckDB costs every process that reads the warehouse 0.08-0.1 s of CPU. Otherwise (the SQL edited since,
    the file missing or unreadable) DuckDB reads them here; write_schemas_file() rewrites the file
    (tests/warehouse/test_catalog.py fails until it is)."""
    sql = declared_sql()
    try:
        kept = json.loads(SCHEMAS_FILE.read_text(encoding="utf-8"))
        if kept["sql_sha256"] == hashlib.sha256(sql.encode()).hexdigest():
            return {table: [(str(c), str(t)) for c, t in columns] for table, columns in kept["tables"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return declared_schemas(sql)


def declared_schemas(sql: str) -> dict[str, list[tuple[str, str]]]:
    """DuckDB's reading of the table declarations in ``sql``."""
    con = duckdb.connect()
    try:
        con.execute(sql)
        out: dict[str, list[tuple[str, str]]] = {}
        for table, column, dtype in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "ORDER BY table_name, ordinal_position"
        ).fetchall():
            out.setdefault(table, []).append((column, dtype))
    finally:
        con.close()
    return out


def write_schemas_file() -> Path:
    """sql/schemas.json for the SQL as it is now."""
    sql = declared_sql()
    tables = declared_schemas(sql)
    digest = json.dumps(hashlib.sha256(sql.encode()).hexdigest())
    lines = ",\n  ".join(f"{json.dumps(table)}: {json.dumps(columns)}" for table, columns in tables.items())
    text = f'{{"sql_sha256": {digest},\n "tables": {{\n  {lines}\n }}}}\n'  # a table a line
    write_atomic(SCHEMAS_FILE, text.encode())
    os.chmod(SCHEMAS_FILE, 0o644)  # a package file, read by everyone who runs fleetscope
    return SCHEMAS_FILE


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table_files(data_dir: Path, table: str) -> list[Path]:
    return sorted((Path(data_dir) / table).glob("date=*/*.parquet"))


def padded(table: str, source: str) -> str:
    """``source`` (Parquet files of ``table``) with every declared column, NULL where no file has it: files an
    older fleetscope wrote lack the columns added since, and union_by_name only fills a column that some
    file has. Used only where the plain source fails to bind. The views that refresh_catalog_file writes to
    fleet.duckdb can stay padded after files with the column arrive (they are rewritten when the declared
    SQL changes): as correct, and DuckDB still pushes filters down to the Parquet scan through the union."""
    empty = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in schemas()[table])
    return f"(SELECT * FROM {source} UNION ALL BY NAME SELECT {empty} WHERE false)"


def typed_select(table: str, source: str) -> str:
    """SELECT every declared column of ``table``, cast to its declared type, FROM ``source``."""
    return "SELECT " + ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in schemas()[table]) + f" FROM {source}"


def files_source(table: str, files_sql: str | None) -> str:
    """The Parquet files ``files_sql`` (a pattern or a list, as SQL) of ``table`` as a source; no rows with
    the declared columns where ``files_sql`` is None (no files)."""
    if files_sql is None:
        nulls = ", ".join(f'NULL AS "{c}"' for c, _ in schemas()[table])
        return f"(SELECT {nulls}) WHERE false"
    return f"read_parquet({files_sql}, union_by_name = true, hive_partitioning = false)"


def create_typed_view(con: duckdb.DuckDBPyConnection, head: str, table: str, source: str) -> None:
    """``{head} AS`` typed_select(table, source), the source padded (see padded) where its files lack a
    declared column."""
    try:
        con.execute(f"{head} AS {typed_select(table, source)}")
    except duckdb.BinderException:
        con.execute(f"{head} AS {typed_select(table, padded(table, source))}")


def _view(data_dir: Path, table: str, temp: bool) -> tuple[str, str]:
    """(the CREATE VIEW head, the source) of ``table``'s view over all its files."""
    kind = "TEMP VIEW" if temp else "VIEW"
    pattern = quote_literal(str(Path(data_dir).resolve() / table / "date=*" / "*.parquet"))
    return f'CREATE OR REPLACE {kind} "{table}"', files_source(table, pattern if table_files(data_dir, table) else None)


def view_sql(data_dir: Path, table: str, temp: bool = False) -> str:
    head, source = _view(data_dir, table, temp)
    return f"{head} AS {typed_select(table, source)}"


def create_views(con: duckdb.DuckDBPyConnection, data_dir: Path, temp: bool = False, tables=None,
                 unreadable: list[str] | None = None) -> None:
    """Every table's view. With ``unreadable`` (a list), a table whose files DuckDB cannot read (a damaged
    Parquet file) becomes a view that raises that error when queried, and the error goes on the list; the
    other views are built. Without it, the error is raised."""
    for table in tables or schemas():
        try:
            create_view(con, data_dir, table, temp=temp)
        except duckdb.Error as e:
            if unreadable is None:
                raise
            reraise(e)
            first = first_line(e)
            unreadable.append(f"{table}: {first}")
            columns = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in schemas()[table])
            message = quote_literal(f"table {table} cannot be read: {first}")
            kind = "TEMP VIEW" if temp else "VIEW"
            con.execute(f'CREATE OR REPLACE {kind} "{table}" AS SELECT {columns} FROM range(1) WHERE error({message})')


def create_view(con: duckdb.DuckDBPyConnection, data_dir: Path, table: str, temp: bool = False) -> None:
    """``table``'s view (view_sql), padded where its files lack a declared column."""
    head, source = _view(data_dir, table, temp)
    create_typed_view(con, head, table, source)


def connect(data_dir: Path, tables=None, unreadable: list[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every table as a view: reads the warehouse without locking it.
    ``tables``: only these views (a caller that reads one table skips building the others).
    ``unreadable``: see create_views (for a person's queries: the readable tables stay usable)."""
    con = duckdb.connect()
    # Every time in the warehouse is UTC: compare them with now() in UTC whatever the machine's zone.
    con.execute("SET TimeZone = 'UTC'")
    create_views(con, Path(data_dir), tables=tables, unreadable=unreadable)
    return con


#: What DuckDB's error says when a write hits a full disk.
NO_SPACE = "No space left on device"
#: What it says when this user may not open the file for writing.
PERMISSION = re.compile(r"Permission denied|Operation not permitted")


def refresh_catalog_file(data_dir: Path) -> str | None:
    """Rewrite the views in <data>/fleet.duckdb. Returns a warning instead of failing if it is busy.

    A view's SQL only changes when its table gets its first file or the schema changes, so the rewrite is
    skipped when the views are what the last rewrite wrote and the file was not written since (its size and
    mtime are kept beside it, in .fleet.duckdb.views): opening the file and rewriting 17 views is ~50 ms
    of every run."""
    path = Path(data_dir) / CATALOG_FILE
    sqls = [view_sql(Path(data_dir), table) for table in schemas()]
    digest = hashlib.sha256("\n".join(sqls).encode()).hexdigest()
    stamp = path.with_name(f".{CATALOG_FILE}.views")
    if _catalog_stamp(path, digest) == _read(stamp):
        return None
    rebuilt = ""
    existed = path.exists()
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as e:
        reraise(e)  # not a damaged file to move aside
        if "Could not set lock" in str(e):
            return f"could not update {path} (in use by another process?): {e}"
        if (existed and not os.access(path, os.W_OK)) or PERMISSION.search(str(e)):
            # another user's file (collect under cron, admin by an operator): not damaged, only not ours
            return f"could not update {path}, which this user may not write: {first_line(e)}; the next collect does"
        if not existed or NO_SPACE in str(e):  # not a damaged file: one this call could not write (a full disk)
            if not existed:
                for f in (path, path.with_name(path.name + ".wal")):
                    f.unlink(missing_ok=True)
            return f"could not write {path}: {first_line(e)}; the next run writes it"
        # Damaged: it holds only these views (the data is in the Parquet files), so it is made anew; the
        # damaged file is kept beside it for whoever wants to look.
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        for f in (path, path.with_name(path.name + ".wal")):
            if f.exists():
                f.rename(aside if f == path else aside.with_name(aside.name + ".wal"))
        rebuilt = f"{path} could not be opened ({str(e).strip()[:200]}): moved to {aside.name} and rebuilt"
        con = duckdb.connect(str(path))
    try:
        for table in schemas():
            create_view(con, Path(data_dir), table)
    except duckdb.Error as e:  # a damaged Parquet file: the data is stored; the views wait for the next run
        con.close()
        reraise(e)
        if not existed and NO_SPACE in str(e):  # a file begun on a full disk is not one to keep as damaged
            for f in (path, path.with_name(path.name + ".wal")):
                f.unlink(missing_ok=True)
        return f"could not update the views in {path}: {first_line(e)}"
    finally:
        con.close()
    try:
        write_atomic(stamp, _catalog_stamp(path, digest).encode(), keep_mode=True)  # readable as the file is
    except OSError as e:  # the views are written; the next run only writes them again
        stamp.unlink(missing_ok=True)
        return f"could not note the views written to {path} in {stamp}: {e}"
    return rebuilt or None


def refresh_catalog_quietly(data_dir: Path) -> str | None:
    """refresh_catalog_file for a caller whose data is stored already: the views file is only a convenience
    for the DuckDB CLI, so any failure is a warning (returned), never the caller's failure."""
    try:
        return refresh_catalog_file(data_dir)
    except Exception as e:  # noqa: BLE001 - see above
        reraise(e)
        return f"could not update {Path(data_dir) / CATALOG_FILE}: {type(e).__name__}: {e}"


def _catalog_stamp(path: Path, digest: str) -> str:
    """The views' hash, then size and mtime of the file and of its write-ahead log (a session killed before
    its checkpoint leaves its changes there), or "" without the file."""
    stats = []
    for f in (path, path.with_name(path.name + ".wal")):
        try:
            st = f.stat()
        except FileNotFoundError:
            if f == path:
                return ""
            stats.append("-")
        else:
            stats.append(f"{st.st_size}:{st.st_mtime_ns}")
    return " ".join([digest, *stats])


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:  # not there, or another user's (admin run by an operator, collect by cron): write again
        return None
