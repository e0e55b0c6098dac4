"""Printing query results, and the interactive SQL prompt of `fleetscope sql`."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import decimal
import functools
import io
import json
import sys
import threading
from pathlib import Path

MAX_CELL = 60


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value).replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


#: How to see a cut cell whole, after `fleetscope sql QUERY`'s table and at the prompt.
WHOLE = "--format csv or json has them whole"
WHOLE_AT_PROMPT = "`fleetscope sql --format csv QUERY` has them whole"


def format_table(names: list[str], rows: list[tuple], whole: str | None = None) -> str:
    """A text table; a cell longer than MAX_CELL is cut (with "…"), and the row count says so, with `whole`
    (how to see them whole) where the caller has a way."""
    cells = [[_cell(v) for v in row] for row in rows]
    cut = any(v is not None and not isinstance(v, float) and len(str(v)) > MAX_CELL for row in rows for v in row)
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    numeric = [all(isinstance(r[i], (int, float, decimal.Decimal)) or r[i] is None for r in rows) and rows
               for i in range(len(names))]

    def line(values):
        return " | ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(names), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    note = f"; cells cut at {MAX_CELL} characters" + (f": {whole}" if whole else "") if cut else ""
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''}{note})")
    return "\n".join(out)


def _json_default(value):
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return _json_value(float(value))
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def _json_value(value):
    """A row's value as strict JSON takes it: NaN and the infinities (0/0 in SQL) are null, which JSON has
    (json.dumps writes NaN, which most parsers refuse); the rest as it is, or through _json_default."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


def _unique(names: list[str]) -> list[str]:
    """Column names as JSON keys: a repeated name gets _2, _3, ... (SELECT a.id, b.id), none is lost."""
    taken = set(names)
    out: list[str] = []
    for name in names:
        key, n = name, 1
        while key in out or (key != name and key in taken):  # n_2 must not be a column's own name
            n += 1
            key = f"{name}_{n}"
        out.append(key)
    return out


def answer(con, statement: str, fmt: str = "table", whole: str = WHOLE) -> str:
    """`statement`'s result, formatted; a query stopped by Ctrl-C raises KeyboardInterrupt. (DuckDB stops it
    and raises RuntimeError("Query interrupted"), or InterruptException: read as an SQL error, the command
    exited 1 with a traceback, and the prompt ended.) Rows are fetched inside: an error can come with them."""
    with _interruptible():
        return format_result(con.execute(statement), fmt, whole)


@contextlib.contextmanager
def _interruptible():
    """DuckDB's word that Ctrl-C stopped a query (InterruptException, or RuntimeError("Query interrupted")) as
    the KeyboardInterrupt it is."""
    import duckdb

    try:
        yield
    except duckdb.InterruptException:
        raise KeyboardInterrupt from None
    except RuntimeError as e:
        if str(e).startswith("Query interrupted"):
            raise KeyboardInterrupt from None
        raise


def format_result(cursor, fmt: str = "table", whole: str | None = WHOLE) -> str:
    if cursor is None or cursor.description is None:  # a statement that returns no rows, or none at all
        return "ok"
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    if fmt == "json":
        keys = _unique(names)
        return "\n".join(json.dumps({k: _json_value(v) for k, v in zip(keys, r)}, default=_json_default,
                                    ensure_ascii=False, allow_nan=False) for r in rows)
    return format_table(names, rows, whole)


HELP = """Statements end with ';'. Commands:
  .tables          list the tables (docs/sql.md describes every column)
  .schema TABLE    the columns of a table
  .help            this text
  .quit            leave (or Ctrl-D)"""


def repl(con, data_dir: Path, stdin=None, stdout=None, again=None) -> int:
    """A small SQL prompt: multi-line statements, history when readline is there, errors do not exit.

    Returns 0, or 5 when statements were read from a pipe and one of them failed. Ctrl-C at a terminal drops
    the statement being typed or stops the one running, and the prompt goes on; from a pipe it stops the
    script (KeyboardInterrupt, exit 130), as SIGTERM stops either. ``again(read)``: ``read()``'s result, each
    statement's and prompt command's, made again where it must be (`fleetscope sql`: where a rollup swapped a
    file away meanwhile); None: once.
    """
    import signal

    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    interactive = stdin.isatty()
    terminated = []
    main = threading.current_thread() is threading.main_thread()

    def on_sigterm(signum, frame):  # as the command's own handler (KeyboardInterrupt), but told from Ctrl-C
        terminated.append(signum)
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, on_sigterm) if main else None
    try:
        return _repl(con, data_dir, stdin, stdout, interactive, lambda: bool(terminated) or not interactive,
                     again or (lambda read: read()))
    finally:
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before)


def _repl(con, data_dir: Path, stdin, stdout, interactive: bool, stop_on_interrupt, again) -> int:
    import duckdb

    if interactive:
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:
            pass
        print(f"fleetscope sql on {data_dir}. Type .help for help, .quit to leave.", file=stdout)

    def read(prompt: str) -> str:
        if interactive and stdin is sys.stdin:
            return input(prompt)
        line = stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    buffer: list[str] = []
    status = 0
    while True:
        try:
            line = read("...> " if buffer else "sql> ")
        except EOFError:
            break
        except KeyboardInterrupt:
            if stop_on_interrupt():
                raise
            buffer = []
            print(file=stdout)
            continue
        stripped = line.strip()
        if not buffer and stripped.startswith("."):
            word, _, arg = stripped.partition(" ")
            if word in (".quit", ".exit"):
                break
            try:
                with _interruptible():
                    error = again(functools.partial(_dot_command, con, word, arg.strip(), stdout))
            except KeyboardInterrupt:  # as a statement's: a person at the prompt goes on, a script stops
                if stop_on_interrupt():
                    raise
                print("interrupted", file=sys.stderr)
                continue
            except duckdb.Error as e:
                error = str(e)
            if error:
                print(f"error: {error}", file=sys.stderr)
                status = 0 if interactive else 5
            continue
        buffer.append(line)
        if not stripped.endswith(";"):
            continue
        statement, buffer = "\n".join(buffer), []
        # made again only where it is one statement: of several, those before the one that failed have run
        # (an INSERT would run twice)
        retry = again if _one_statement(duckdb, statement) else (lambda read: read())
        try:
            print(retry(functools.partial(answer, con, statement, whole=WHOLE_AT_PROMPT)), file=stdout)
        except KeyboardInterrupt:  # the statement stops; a person at the prompt goes on, a script stops
            if stop_on_interrupt():
                raise
            print("interrupted", file=sys.stderr)
        except duckdb.Error as e:
            print(f"error: {e}", file=sys.stderr)
            # A script piped in that hit an error exits 5, like `fleetscope sql QUERY`; a person at the
            # prompt just reads the error and goes on.
            status = 0 if interactive else 5
    return status


def _one_statement(duckdb, text: str) -> bool:
    """Whether text holds one SQL statement (one that does not parse: its error comes at once either way)."""
    try:
        return len(duckdb.extract_statements(text)) <= 1
    except duckdb.Error:
        return True


def _dot_command(con, word: str, arg: str, stdout) -> str | None:
    """Runs a prompt command (.help, .tables, .schema TABLE); returns what was wrong, or None."""
    if word == ".help":
        print(HELP, file=stdout)
    elif word == ".tables":
        rows = con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()
        print("\n".join(r[0] for r in rows), file=stdout)
    elif word == ".schema" and arg:
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [arg]).fetchall()
        if not rows:
            return f"no table {arg!r}; .tables lists them"
        print(format_table(["column_name", "data_type"], rows), file=stdout)
    else:
        return f"unknown command {word!r}; .help lists them"
    return None
