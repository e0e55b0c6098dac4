"""The warehouse: spooled documents in, Parquet + DuckDB views out. Knows the document schema and SQL."""

from .catalog import connect, refresh_catalog_file, schemas
from .ingest import IngestError, IngestReport, ingest_pending
from .rows import DocumentError, host_rows

__all__ = [
    "DocumentError",
    "IngestError",
    "IngestReport",
    "connect",
    "host_rows",
    "ingest_pending",
    "refresh_catalog_file",
    "schemas",
]
