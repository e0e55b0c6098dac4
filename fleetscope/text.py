"""Text as a page, a JSON file and Parquet can hold it, whatever a host or an inventory file held."""

from __future__ import annotations

#: Unicode's bidirectional controls: one left open in a name reverses the text after it on a page.
BIDI_CONTROLS = {c: "\ufffd" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def clean_text(value: str) -> str:
    """Lone surrogates (bytes that were not UTF-8, as Ansible and Python's surrogateescape read them, or JSON
    escapes of them) and bidirectional controls become U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:  # the bytes a file held (\udc80-\udcff): each byte that is not UTF-8 becomes U+FFFD
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # other lone surrogates (JSON's \ud800): "?"
            value = value.encode("utf-8", "replace").decode("utf-8")
    return value.translate(BIDI_CONTROLS)


def one_line(message: str) -> str:
    """A message of several lines (ssh's, a module's) on one, its lines joined by " / ": a log of one line per
    host stays one (cron's mail, grep)."""
    return " / ".join(line.strip() for line in str(message).splitlines() if line.strip())


def first_line(error: BaseException) -> str:
    """An error's first line (DuckDB's and Ansible's go on with context and carets), or its type's name."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
