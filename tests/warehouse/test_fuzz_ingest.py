"""Ingest fuzzed with malformed documents: each bad document is refused with a message naming the host and
the field and kept aside; the good documents of the same run are stored; the warehouse stays readable."""

from __future__ import annotations

import copy
import math
from datetime import datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fleetscope.warehouse import DocumentError, connect, host_rows, ingest_pending
from tests import docfactory as f

T0 = datetime(2026, 11, 23, 9, 0)
GOOD = f.document("gpu01", T0, gpus=[f.gpu(0, util=50, processes=[f.gpu_process(7, "alice")])],
                  top=[{"pid": 1, "user": "root", "command": "init", "cpu_time_s": 1.0, "cpu_percent": 0.0,
                        "rss_bytes": 1024, "started_at": "2026-11-01T08:00:01Z", "state": "S"}])


def paths(node, prefix=()):
    """Every place in the document a value can be replaced or removed."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


PATHS = [p for p in paths(GOOD) if p]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.just(math.nan), st.just(-1),
    st.text(max_size=50), st.text(min_size=5000, max_size=20000), st.just("<script>alert(1)</script>'; --"),
    st.just("\x00\ud800 ☃ 𝄞"), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                                   max_size=3),
)
MUTATION = st.tuples(st.sampled_from(PATHS), st.one_of(st.just("delete"), VALUES))


def mutate(document, path, value):
    doc = copy.deepcopy(document)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value == "delete":
        if isinstance(node, dict):
            del node[path[-1]]
        else:
            node.pop(path[-1])
    else:
        node[path[-1]] = value
    return doc


def result(doc, host="gpu01"):
    return f.ok(host, T0, doc)


@settings(max_examples=400, deadline=None)
@given(st.lists(MUTATION, min_size=1, max_size=3))
def test_host_rows_accepts_or_names_the_field_never_crashes(mutations):
    doc = GOOD
    for path, value in mutations:
        try:
            doc = mutate(doc, path, value)
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # an earlier mutation removed or replaced the parent (None has no .pop)
    try:
        rows = host_rows(result(doc), "run-1")
    except DocumentError as e:
        assert "'gpu01'" in str(e) and e.field
        return
    for table_rows in rows.values():
        for row in table_rows:
            for v in row.values():
                assert not (isinstance(v, float) and not math.isfinite(v))
                assert not (isinstance(v, str) and len(v) > 4096)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(MUTATION)
@example((("cpu", "logical"), 2**31))  # found by this test: valid for BIGINT, too big for an INTEGER column
@example((("host", "cpu_logical"), 2**31))
def test_one_bad_document_never_costs_the_others(tmp_path_factory, mutation):
    data = tmp_path_factory.mktemp("fuzz")
    bad = mutate(GOOD, *mutation)
    run_id = f.spool_run(data, T0, [result(GOOD, "good1"), result(bad, "bad"), result(GOOD, "good2")])
    report = ingest_pending(data)
    con = connect(data)
    try:
        assert con.execute("SELECT host FROM host_samples WHERE host LIKE 'good%' ORDER BY 1").fetchall() == [
            ("good1",), ("good2",)]
        status = dict(con.execute("SELECT host, status FROM host_status").fetchall())
    finally:
        con.close()
    if report.rejected:
        assert len(report.rejected) == 1 and "'bad'" in report.rejected[0]
        assert status["bad"] == "failed"
        kept = data / "spool" / "rejected" / run_id
        assert (kept / "bad.json").exists() and "'bad'" in (kept / "bad.error.txt").read_text()
    else:
        assert status["bad"] == "ok"


@pytest.mark.parametrize("path, value, field", [
    (("cpu", "jiffies", "user"), -5, "cpu.jiffies.user"),
    (("memory", "total_bytes"), math.nan, "memory.total_bytes"),
    (("gpus", "devices", 0, "energy_mj"), "lots", "energy_mj"),
    (("time", "collected_at"), "yesterday", "time.collected_at"),
])
def test_the_message_names_the_field(path, value, field):
    with pytest.raises(DocumentError, match=field.replace(".", r"\.")):
        host_rows(result(mutate(GOOD, path, value)), "run-1")
