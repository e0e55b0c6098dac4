"""The tables' declared schemas as the warehouse reads them: kept in sql/schemas.json, so that no process runs
the declarations in DuckDB only to learn them (0.08-0.1 s of CPU each)."""

import json

import duckdb

from fleetscope.warehouse import catalog


def test_the_kept_schemas_are_duckdbs_reading_of_the_declared_sql():
    kept = json.loads(catalog.SCHEMAS_FILE.read_text(encoding="utf-8"))
    fresh = catalog.declared_schemas(catalog.declared_sql())
    assert {t: [tuple(c) for c in cols] for t, cols in kept["tables"].items()} == fresh, (
        "sql/schemas.json is out of step with the SQL: run "
        "python -c 'from fleetscope.warehouse.catalog import write_schemas_file; write_schemas_file()'")
    assert "gpu_samples" in fresh and "host_samples" in fresh


def test_schemas_come_from_the_kept_file_without_running_duckdb(monkeypatch):
    catalog.schemas.cache_clear()
    monkeypatch.setattr(catalog, "declared_schemas", lambda sql: (_ for _ in ()).throw(AssertionError("ran")))
    try:
        assert catalog.schemas()["runs"][0] == ("run_id", "VARCHAR")
    finally:
        catalog.schemas.cache_clear()


def test_a_kept_file_for_other_sql_or_unreadable_is_not_used(tmp_path, monkeypatch):
    stale = tmp_path / "schemas.json"
    monkeypatch.setattr(catalog, "SCHEMAS_FILE", stale)
    for text in ('{"sql_sha256": "0000", "tables": {"runs": [["wrong", "INTEGER"]]}}', "not json", "[]", ""):
        stale.write_text(text)
        catalog.schemas.cache_clear()
        try:
            got = catalog.schemas()
        finally:
            catalog.schemas.cache_clear()
        assert got == catalog.declared_schemas(catalog.declared_sql()), text
    stale.unlink()
    assert catalog.schemas() == catalog.declared_schemas(catalog.declared_sql())
    catalog.schemas.cache_clear()


def test_the_views_cast_to_the_kept_types():
    con = duckdb.connect()
    catalog.create_views(con, catalog.SQL_DIR, tables=("gpu_samples",))  # a folder without Parquet: empty views
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'gpu_samples'").fetchall())
    assert types == dict(catalog.schemas()["gpu_samples"])
