"""docs/sql.md is the reference people query the warehouse with: every ```sql block in it, and the README's
`fleetscope sql "..."` examples, run here on a real warehouse, and the key ones give the hand-computed answer.

The warehouse is built the way production builds it: synthetic host documents (tests/docfactory.py) spooled
as runs five minutes apart within the last hour, ingested with ingest_pending, then rolled up with
fleetscope.warehouse.rollup. Every query must run and answer, and the values of rollup-based queries are
checked by the tests marked ROLLUP below.
"""

from __future__ import annotations

import json
import re
import shlex
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from fleetscope import cli
from fleetscope.settings import load
from fleetscope.warehouse import connect, ingest_pending, schemas
from fleetscope.warehouse.rollup import rollup
from tests import docfactory as f

PROJECT = Path(__file__).resolve().parents[2]
SQL_DOC = PROJECT / "docs" / "sql.md"
README = PROJECT / "README.md"

GIB = f.GIB
RUNS = 4  # collect runs, STEP seconds apart, the last one a minute ago
STEP = 300
SPAN = (RUNS - 1) * STEP  # seconds every GPU and host is covered for in the rollups (the first sample: none)
# Each host's result arrives a little after the run starts, at its own offset: `ts` differs within a run.
OFFSET = {"gpu01": 1.0, "cpu01": 1.5, "gpu02": 2.0, "lost01": 10.0}
CORES = {"gpu01": 16, "cpu01": 4, "gpu02": 8}
CPU_BUSY = {"gpu01": 0.5, "cpu01": 0.25, "gpu02": 0.1}
RX_RATE, TX_RATE = 10**7, 2 * 10**6  # gpu01's network, bytes per second
# (host, index): utilization %, power W, temperature C, memory used, processes (pid, user, GPU memory)
GPUS = {
    ("gpu01", 0): (90, 300.0, 70, 41 * GIB, [(1001, "alice", 30 * GIB), (2001, "bob", 10 * GIB)]),  # shared
    ("gpu01", 1): (0, 60.0, 45, 21 * GIB, [(2002, "bob", 20 * GIB)]),  # idle, held by bob
    ("gpu02", 0): (0, 50.0, 35, GIB // 2, []),  # free
    ("gpu02", 1): (50, 200.0, 83, 9 * GIB, [(1002, "alice", 8 * GIB)]),  # hot, throttled, ECC errors
    ("gpu02", 2): (0, 60.0, 40, 12 * GIB, [(3001, "carol", None), (4001, "dave", None)]),  # held, no memory figure
}
#: The users' groups (report.user_groups), for the doc's GPU-hours per group: dave is in none.
GROUPS_CSV = "user,group,pi\nalice,vision,Prof. X\nbob,vision,Prof. X\ncarol,nlp,Prof. Y\n"
NEW_DRIVER = "580.82.07"  # gpu02's driver is upgraded before the last run
PREVIOUS_BOOT = f.BOOT - timedelta(days=9)  # cpu01's boot before it rebooted, after the first run


def uuid(host: str, index: int) -> str:
    return f"GPU-{host}-{index:04d}-0000-0000-000000000000"


def gpus_of(host: str, k: int) -> list[dict] | None:
    devices = []
    for (h, index), (util, power, temp, mem, procs) in sorted(GPUS.items()):
        if h != host:
            continue
        g = f.gpu(index, util=util, mem_used_bytes=mem, temperature_c=temp, power_w=power,
                  energy_mj=10**9 + int(k * STEP * power * 1000),
                  processes=[f.gpu_process(pid, user, f"python job{pid}.py", gpu_mem_bytes=m,
                                           started_at=f.iso_z(f.BOOT + timedelta(minutes=pid)))
                             for pid, user, m in procs])
        g["uuid"] = uuid(host, index)
        g["throttle_reasons"] = ["gpu_idle"] if util == 0 else []
        if (host, index) == ("gpu02", 1):
            g["throttle_reasons"] = ["sw_thermal_slowdown", "hw_thermal_slowdown"]
            g["ecc_volatile_uncorrected"] = g["ecc_aggregate_uncorrected"] = 2
        devices.append(g)
    return devices or None


def host_doc(host: str, at: datetime, k: int) -> dict:
    top = [{"pid": 1001, "user": "alice", "command": "python train.py --token=<redacted>", "cpu_time_s": 5000.0,
            "cpu_percent": 99.0, "rss_bytes": 8 * GIB, "started_at": f.iso_z(f.BOOT), "state": "R"}]
    doc = f.document(host, at, cores=CORES[host], cpu_busy=CPU_BUSY[host], gpus=gpus_of(host, k),
                     top=top if host == "gpu01" else ())
    if host == "gpu01":
        doc["memory"]["oom_kills"] = 7 + k * (k - 1) // 2  # 7 from before; then 0, 1 and 2 killed between runs
        doc["network"]["interfaces"][0]["rx_bytes"] = 10**9 + k * STEP * RX_RATE
        doc["network"]["interfaces"][0]["tx_bytes"] = 10**9 + k * STEP * TX_RATE
    if host == "gpu02" and k == RUNS - 1:
        doc["host"]["nvidia_driver"] = NEW_DRIVER
    if host == "cpu01" and k == 0:  # it rebooted (at BOOT) between the first run and the second
        doc["host"]["boot_time"] = f.iso_z(PREVIOUS_BOOT)
    return doc


def run_starts(now: datetime) -> list[datetime]:
    last = (now - timedelta(seconds=60)).replace(microsecond=0)
    return [last - timedelta(seconds=(RUNS - 1 - k) * STEP) for k in range(RUNS)]


def build(data_dir: Path, config: Path, now: datetime) -> list[datetime]:
    starts = run_starts(now)
    for k, start in enumerate(starts):
        results = []
        for host, offset in OFFSET.items():
            at = start + timedelta(seconds=offset)
            if host == "lost01":
                results.append(f.unreachable(host, at))
            else:
                results.append(f.ok(host, at, host_doc(host, at, k)))
        f.spool_run(data_dir, start, results, duration=timedelta(seconds=12))
    report = ingest_pending(data_dir)
    assert len(report.runs) == RUNS and not report.rejected, report
    # gpu02 put in maintenance, then its GPU 0 taken out of it; gpu01's GPU 1: "on" in check mode only
    on = {"action": "maintenance", "state": "on", "gpu": None}
    f.admin_action(data_dir, starts[1], "gpu02", on, operator="ops")
    f.admin_action(data_dir, starts[2], "gpu02", {**on, "state": "off", "gpu": 0}, operator="ops")
    f.admin_action(data_dir, starts[2], "gpu01", {**on, "gpu": 1}, check_mode=True, operator="ops")
    rollup(data_dir, load(config))
    return starts


# -- the documents under test --------------------------------------------------------------------------


class Block:
    """One ```sql block of docs/sql.md, named by the heading right above it or else by its first line."""

    def __init__(self, title: str, sql: str, line: int):
        self.title, self.sql, self.line = title, sql, line

    @property
    def id(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")[:60]


def sql_blocks() -> list[Block]:
    lines = SQL_DOC.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```sql":
            start, body = i, []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            above = next((x for x in reversed(lines[:start]) if x.strip()), "")
            title = above.lstrip("#").strip() if above.startswith("#") else body[0].lstrip("- ").strip()
            blocks.append(Block(title, "\n".join(body), start + 1))
        i += 1
    return blocks


def shell_queries(doc: Path) -> list[str]:
    """The SQL of every `fleetscope sql ... "QUERY"` in the ```sh blocks of `doc`, as the shell passes it."""
    text = doc.read_text(encoding="utf-8")
    queries = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S):
        words = shlex.split(block, comments=True)
        for k in range(len(words) - 1):
            if words[k] == "fleetscope" and words[k + 1] == "sql":
                rest = words[k + 2:]
                while rest and rest[0].startswith("--"):
                    rest = rest[2:]  # an option and its value
                if rest and rest[0].lstrip().upper().startswith(("SELECT", "WITH")):
                    queries.append(rest[0])
    return queries


BLOCKS = sql_blocks()


def block(title_part: str) -> Block:
    found = [b for b in BLOCKS if title_part.lower() in b.title.lower()]
    assert len(found) == 1, f"docs/sql.md: expected one ```sql block titled like {title_part!r}, found {len(found)}"
    return found[0]


# -- the warehouse ---------------------------------------------------------------------------------------


class Warehouse:
    def __init__(self, base: Path, starts: list[datetime]):
        self.base, self.data, self.config, self.starts = base, base / "data", base / "fleetscope.toml", starts

    def connect(self) -> duckdb.DuckDBPyConnection:
        """What `fleetscope sql` sees, in UTC as docs/sql.md tells every session to be."""
        con = connect(self.data)
        con.execute("SET TimeZone = 'UTC'")
        return con

    def query(self, sql: str, con: duckdb.DuckDBPyConnection | None = None) -> list[dict]:
        own = con is None
        con = con or self.connect()
        try:
            cur = con.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            if own:
                con.close()

    def answer(self, title_part: str) -> list[dict]:
        return self.query(block(title_part).sql)

    @property
    def straddles_month(self) -> bool:
        """The runs began last month (the test runs in the first minutes of a month): 'this month' sees less."""
        return self.starts[0].month != self.starts[-1].month


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Warehouse:
    base = tmp_path_factory.mktemp("sqldoc")
    (base / "fleetscope.toml").write_text("# the defaults: [rollup] max_interval_s = 600, held_mem_mib = 1024\n")
    (base / "groups.csv").write_text(GROUPS_CSV)  # beside data/: the doc's read_csv('groups.csv') runs from there
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    # Each hour holds the intervals that end in it. A run whose hosts answer on both sides of an hour (it
    # starts a few seconds before one) gives one host an interval more in that hour than the others, and the
    # tests' per-hour answers assume every host sampled alike: move the runs back the few seconds it takes.
    late = timedelta(seconds=max(OFFSET.values()))
    while any((start + late).hour != start.hour for start in run_starts(now)):
        now -= timedelta(seconds=1)
    return Warehouse(base, build(base / "data", base / "fleetscope.toml", now))


@pytest.fixture
def in_base(warehouse, monkeypatch):
    """Run from the folder holding data/, so the doc's read_parquet('data/...') examples find the files."""
    monkeypatch.chdir(warehouse.base)
    return warehouse


def by(rows: list[dict], *keys: str) -> dict:
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


def near(value, expected, places: int) -> bool:
    """A value the query rounded to `places` decimals, against the exact expectation."""
    return value is not None and abs(value - expected) <= 0.5 * 10**-places + 1e-9


# -- every block runs --------------------------------------------------------------------------------------


def test_the_doc_has_the_worked_queries():
    titles = [b.title for b in BLOCKS]
    assert len(BLOCKS) >= 15, titles
    assert len({b.id for b in BLOCKS}) == len(BLOCKS), "two ```sql blocks share a title"


@pytest.mark.parametrize("blk", BLOCKS, ids=[b.id for b in BLOCKS])
def test_every_sql_block_runs(in_base, blk):
    rows = in_base.query(blk.sql)
    # This fleet has something for every question the doc asks: an empty answer means a broken query.
    assert rows, f"docs/sql.md line {blk.line}: {blk.title!r} returned no rows"


def test_the_catalog_file_gives_the_same_answers(in_base):
    """`duckdb data/fleet.duckdb` sees the same views as `fleetscope sql` (rollups included)."""
    con = duckdb.connect(str(in_base.data / "fleet.duckdb"), read_only=True)
    mem = in_base.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for blk in BLOCKS:
            if "read_parquet" in blk.sql:
                continue
            direct = sorted(map(repr, (tuple(r.values()) for r in in_base.query(blk.sql, mem))))
            via_file = sorted(map(repr, (tuple(r.values()) for r in in_base.query(blk.sql, con))))
            assert via_file == direct, f"docs/sql.md line {blk.line}: {blk.title!r} differs through fleet.duckdb"
    finally:
        con.close()
        mem.close()


def test_the_column_reference_matches_the_schema():
    """Every table and column of the warehouse is documented, in order, with its declared type."""
    text = SQL_DOC.read_text(encoding="utf-8")
    documented: dict[str, list[tuple[str, str]]] = {}
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        name = re.match(r"`(\w+)`\s*$", section.splitlines()[0])
        if name:
            documented[name.group(1)] = re.findall(r"^\| `(\w+)` \| ([\w\[\]]+) \|", section, re.M)
    assert documented == schemas()


def fleetscope_sql(warehouse: Warehouse, sql: str, capsys) -> list[dict]:
    """Run `fleetscope sql --format json SQL` in-process, the way a shell would; return its rows."""
    code = cli.main(["sql", "--config", str(warehouse.config), "--data", str(warehouse.data), "--format", "json", sql])
    out, err = capsys.readouterr()
    assert code == 0, f"{sql}\n{err}"
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_readme_queries_run(warehouse, capsys):
    """The README's "Ask the data" examples, through the real `fleetscope sql` command."""
    queries = shell_queries(README)
    assert len(queries) >= 5, queries
    for sql in queries:
        assert fleetscope_sql(warehouse, sql, capsys), f"no rows from: {sql}"


def test_the_docs_shell_examples_run(warehouse, capsys):
    queries = shell_queries(SQL_DOC)
    assert queries
    for sql in queries:
        fleetscope_sql(warehouse, sql, capsys)


# -- the answers: raw tables -------------------------------------------------------------------------------


def test_reading_the_parquet_directly(in_base):
    rows = in_base.answer("DuckDB on any machine")
    assert len(rows) == min(20, RUNS * len(GPUS))
    assert {r["date"] for r in rows} <= {s.date() for s in in_base.starts}
    view = [c for c, _ in schemas()["gpu_samples"]]
    con = duckdb.connect()
    try:
        files = con.execute("SELECT * FROM read_parquet('data/gpu_samples/date=*/*.parquet') LIMIT 0").description
    finally:
        con.close()
    assert [d[0] for d in files] == view + ["date"]  # the same names as the view, plus the folder's day


def test_current_gpu_processes_name_every_user(warehouse):
    rows = warehouse.answer("Which GPU processes are running right now")
    assert sorted((r["host"], r["gpu_index"], r["user"], r["pid"]) for r in rows) == [
        ("gpu01", 0, "alice", 1001), ("gpu01", 0, "bob", 2001), ("gpu01", 1, "bob", 2002),
        ("gpu02", 1, "alice", 1002), ("gpu02", 2, "carol", 3001), ("gpu02", 2, "dave", 4001),
    ]  # from each host's latest run only, although gpu02's result arrived a second after gpu01's
    assert by(rows, "pid")[1001]["gpu_mem_gib"] == 30.0 and by(rows, "pid")[1001]["gpu_util_pct"] == 90


def test_idle_gpus_holding_memory_now(warehouse):
    rows = warehouse.answer("idle but holding memory right now")
    assert [(r["host"], r["gpu_index"], r["users"]) for r in rows] == [("gpu01", 1, "bob"), ("gpu02", 2, "carol, dave")]


def test_free_gpus_now(warehouse):
    rows = by(warehouse.answer("How many GPUs are free"), "host")
    assert (rows["gpu02"]["gpus"], rows["gpu02"]["free_gpus"], rows["gpu02"]["free_indexes"]) == (3, 1, [0])
    assert rows["gpu02"]["in_maintenance"] == [1, 2]  # the whole host, but GPU 0 taken out later
    assert rows["gpu01"]["free_gpus"] == 0 and rows["gpu01"]["in_maintenance"] is None  # check mode: nothing


def test_hosts_down_names_the_unreachable_host(warehouse):
    rows = warehouse.answer("Which hosts were down")
    assert [(r["host"], r["bad_runs"], r["runs"], r["bad_pct"]) for r in rows] == [("lost01", RUNS, RUNS, 100.0)]
    assert rows[0]["last_problem"] == "unreachable: ssh: No route to host" and rows[0]["last_ok"] is None


def test_hottest_gpus_now(warehouse):
    rows = warehouse.answer("Which GPUs are hottest right now")
    assert [(r["host"], r["gpu_index"], r["temperature_c"]) for r in rows][:2] == [("gpu02", 1, 83), ("gpu01", 0, 70)]
    assert len(rows) == len(GPUS)


def test_ecc_errors_and_throttling(warehouse):
    rows = warehouse.answer("ECC errors, row-remapping trouble or throttling in the last 24 hours")
    # gpu_idle alone is no throttling: the idle GPUs report it and are not listed
    assert [(r["host"], r["gpu_index"], r["ecc_volatile"], r["throttled_samples"]) for r in rows] == [
        ("gpu02", 1, 2, RUNS)]
    assert rows[0]["throttle_reasons"] == "sw_thermal_slowdown,hw_thermal_slowdown"


def test_inventory_changes(warehouse):
    rows = warehouse.answer("inventory changed")
    assert [(r["host"], r["what_changed"]) for r in rows] == [("gpu02", f"driver: 580.65.06 -> {NEW_DRIVER}")]


def test_reboots(warehouse):
    """cpu01's reboot is no inventory change (above), but the samples have it."""
    rows = warehouse.answer("hosts rebooted")
    assert [(r["host"], r["booted_at"]) for r in rows] == [("cpu01", f.BOOT)]


def test_run_health(warehouse):
    rows = warehouse.answer("collect runs healthy")
    assert len(rows) == RUNS
    assert {(r["hosts_total"], r["hosts_ok"], r["hosts_unreachable"], r["duration_s"]) for r in rows} == {
        (4, 3, 1, 12.0)}
    assert sorted(r["since_previous_s"] for r in rows if r["since_previous_s"] is not None) == [STEP] * (RUNS - 1)


def test_power_from_the_energy_counter(warehouse):
    rows = warehouse.answer("Mean GPU power between consecutive samples")
    assert len(rows) == len(GPUS) * (RUNS - 1)
    assert all(r["avg_w"] == GPUS[(r["host"], r["gpu_index"])][1] for r in rows)


def test_rates_between_the_last_two_samples(warehouse):
    rows = by(warehouse.answer("CPU %, network and disk rates"), "host")
    assert {h: r["cpu_pct"] for h, r in rows.items()} == {h: 100 * b for h, b in CPU_BUSY.items()}
    assert near(rows["gpu01"]["rx_mib_s"], RX_RATE / 2**20, 2) and near(rows["gpu01"]["tx_mib_s"], TX_RATE / 2**20, 2)
    assert rows["cpu01"]["rx_mib_s"] == 0


# -- the answers: rollup tables (ROLLUP) -----------------------------------------------------------------
# Every GPU and host is covered for SPAN seconds: RUNS samples, STEP apart, the first standing for nothing.


@pytest.fixture
def rolled(warehouse) -> Warehouse:
    return warehouse


@pytest.fixture
def rolled_this_month(rolled) -> Warehouse:
    if rolled.straddles_month:
        pytest.skip("the runs began last month (this test runs just after a month began): 'this month' sees part")
    return rolled


def test_gpu_hours_per_user(rolled_this_month):
    rows = by(rolled_this_month.answer("GPU-hours per user this month"), "user")
    # gpu01 GPU 0 is busy, alice holds 30 GiB of it and bob 10 GiB: 3/4 and 1/4 of its seconds and energy.
    # alice also has gpu02 GPU 1 (busy) to herself; bob has idle gpu01 GPU 1; carol and dave share idle
    # gpu02 GPU 2 equally (their processes report no memory).
    expected = {  # user: (active s, idle-held s, joules)
        "alice": (0.75 * SPAN + SPAN, 0, 0.75 * SPAN * 300 + SPAN * 200),
        "bob": (0.25 * SPAN, SPAN, 0.25 * SPAN * 300 + SPAN * 60),
        "carol": (0, 0.5 * SPAN, 0.5 * SPAN * 60),
        "dave": (0, 0.5 * SPAN, 0.5 * SPAN * 60),
    }
    assert set(rows) == set(expected)
    for user, (active, held, joules) in expected.items():
        r = rows[user]
        got = (r["active_gpu_h"], r["idle_held_gpu_h"], r["gpu_h"], r["kwh"])
        assert near(r["active_gpu_h"], active / 3600, 2), (user, got)
        assert near(r["idle_held_gpu_h"], held / 3600, 2), (user, got)
        assert near(r["gpu_h"], (active + held) / 3600, 2), (user, got)
        assert near(r["kwh"], joules / 3.6e6, 3), (user, got)
    assert (rows["alice"]["hosts"], rows["alice"]["gpus"], rows["bob"]["gpus"]) == (2, 2, 2)


def test_gpu_hours_per_group(in_base):
    if in_base.straddles_month:
        pytest.skip("the runs began last month (this test runs just after a month began): 'this month' sees part")
    rows = by(in_base.answer("GPU-hours per group this month"), "group")
    # as in GPU-hours per user: vision is alice's and bob's GPU time, nlp carol's; dave is in no group
    expected = {"vision": (2, 3 * SPAN, SPAN * 300 + SPAN * 200 + SPAN * 60), "nlp": (1, 0.5 * SPAN, 0.5 * SPAN * 60),
                "(no group)": (1, 0.5 * SPAN, 0.5 * SPAN * 60)}  # group: (users, GPU-seconds, joules)
    assert set(rows) == set(expected)
    for group, (users, seconds, joules) in expected.items():
        r = rows[group]
        assert r["users"] == users and near(r["gpu_h"], seconds / 3600, 2) and near(r["kwh"], joules / 3.6e6, 3), r
    assert near(rows["vision"]["active_gpu_h"], 2 * SPAN / 3600, 2)
    assert near(rows["vision"]["idle_held_gpu_h"], SPAN / 3600, 2)


def test_processes_with_the_most_gpu_hours(rolled):
    rows = by(rolled.answer("Which processes took the most GPU-hours"), "pid")
    # as in GPU-hours per user, each process on its own: alice's 1001 has 3/4 of busy gpu01 GPU 0, her 1002
    # busy gpu02 GPU 1 alone; carol's 3001 and dave's 4001 share idle gpu02 GPU 2 equally
    expected = {1001: 0.75 * SPAN, 1002: SPAN, 2001: 0.25 * SPAN, 2002: SPAN, 3001: 0.5 * SPAN, 4001: 0.5 * SPAN}
    assert set(rows) == set(expected)
    assert all(near(rows[pid]["gpu_h"], seconds / 3600, 2) for pid, seconds in expected.items()), rows
    hours = [r["gpu_h"] for r in rolled.answer("Which processes took the most GPU-hours")]
    assert hours == sorted(hours, reverse=True)
    first = rows[1001]
    assert (first["host"], first["user"], first["command"], first["gpus"]) == ("gpu01", "alice", "python job1001.py", 1)
    assert first["started_at"] == f.BOOT + timedelta(minutes=1001)
    assert near(rows[2002]["idle_held_gpu_h"], SPAN / 3600, 2) and near(rows[1001]["idle_held_gpu_h"], 0, 2)


def test_hosts_whose_oom_killer_killed(warehouse):
    (row,) = warehouse.answer("OOM killer killed processes")
    # gpu01's count rose by 0, 1 and 2 between its runs (the 7 before are not counted); cpu01 killed none
    assert (row["host"], row["killed"], row["last_by"]) == ("gpu01", 3, warehouse.starts[-1] + timedelta(
        seconds=OFFSET["gpu01"]))


def test_user_shares_add_up_to_the_gpu(rolled):
    """docs/sql.md: per GPU and day the users' active, idle-held seconds and energy add up to the GPU's."""
    rows = rolled.query("""
        SELECT g.host, g.gpu_index, g.active_s, g.idle_held_s, g.energy_j,
               sum(u.active_s) AS users_active_s, sum(u.idle_held_s) AS users_idle_held_s,
               sum(u.energy_j) AS users_energy_j
        FROM gpu_daily AS g JOIN user_gpu_daily AS u USING (ts, host, gpu_uuid)
        GROUP BY ALL""")
    assert {(r["host"], r["gpu_index"]) for r in rows} == {k for k, v in GPUS.items() if v[4]}
    for r in rows:
        for col in ("active_s", "idle_held_s", "energy_j"):
            assert r[f"users_{col}"] == pytest.approx(r[col]), r


def test_energy_per_host(rolled_this_month):
    rows = by(rolled_this_month.answer("energy did each host's GPUs use this month"), "host")
    for host in ("gpu01", "gpu02"):
        watts = [v[1] for k, v in GPUS.items() if k[0] == host]
        assert near(rows[host]["gpu_kwh"], SPAN * sum(watts) / 3.6e6, 3), rows[host]
        assert rows[host]["mean_w_per_gpu"] == round(sum(watts) / len(watts)), rows[host]
        assert (rows[host]["gpus"], rows[host]["counter_resets"]) == (len(watts), 0)
    assert set(rows) == {"gpu01", "gpu02"}


def test_utilization_by_hour_of_day(rolled):
    rows = rolled.answer("by hour of day")
    hours = {s.hour for s in rolled.starts} | {(s + timedelta(seconds=2)).hour for s in rolled.starts}
    assert {r["hour_utc"] for r in rows} <= hours
    utils = [v[0] for v in GPUS.values()]
    for r in rows:  # every GPU is sampled at the same times, so each hour has the fleet's mean
        assert r["util_pct"] == round(sum(utils) / len(utils), 1), r
        assert r["active_pct"] == 40.0 and r["idle_held_pct"] == 40.0, r
    assert near(sum(r["gpu_h"] for r in rows), len(GPUS) * SPAN / 3600, 1)


def test_hour_of_day_leaves_out_an_hour_that_holds_only_a_first_sample(tmp_path):
    """The first sample covers no time (nothing before it): if it falls in an hour of its own (runs that
    begin just before the hour), that hour has no seconds and is left out, not shown as NULLs."""
    (tmp_path / "fleetscope.toml").write_text("\n")
    hour = (datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1)).replace(minute=0, second=0,
                                                                                             microsecond=0)
    starts = build(tmp_path / "data", tmp_path / "fleetscope.toml", hour + timedelta(minutes=12))
    assert starts[0].hour != starts[1].hour == starts[-1].hour  # the first run alone in the hour before
    rows = Warehouse(tmp_path, starts).answer("by hour of day")
    assert [r["hour_utc"] for r in rows] == [starts[1].hour]
    assert rows[0]["util_pct"] is not None


def test_idle_held_share_per_host(rolled):
    rows = by(rolled.answer("wasted (idle but held)"), "host")
    got = {h: (r["active_pct"], r["idle_held_pct"], r["free_pct"]) for h, r in rows.items()}
    assert got == {"gpu01": (50.0, 50.0, 0.0), "gpu02": (33.3, 33.3, 33.3)}
    assert near(rows["gpu01"]["gpu_h"], 2 * SPAN / 3600, 1) and near(rows["gpu02"]["gpu_h"], 3 * SPAN / 3600, 1)
    assert near(rows["gpu01"]["idle_held_gpu_h"], SPAN / 3600, 1)


def test_cpu_per_host(rolled):
    rows = by(rolled.answer("How busy was each host's CPU"), "host")
    assert {h: r["cpu_pct"] for h, r in rows.items()} == {h: 100 * b for h, b in CPU_BUSY.items()}
    assert {h: r["busy_cpus"] for h, r in rows.items()} == {h: CORES[h] * b for h, b in CPU_BUSY.items()}
    assert {h: r["load1_mean"] for h, r in rows.items()} == {h: CORES[h] * b for h, b in CPU_BUSY.items()}
    assert {h: r["counter_resets"] for h, r in rows.items()} == {"gpu01": 0, "cpu01": 1, "gpu02": 0}


def test_network_per_host_and_day(rolled):
    rows = rolled.answer("network, per day")
    total = {h: sum(r["rx_gib"] for r in rows if r["host"] == h) for h in CORES}
    assert near(total["gpu01"], SPAN * RX_RATE / 2**30, 2) and total["cpu01"] == total["gpu02"] == 0
    for r in rows:
        if r["host"] == "gpu01":  # one day, or two when the runs straddle midnight: the rate is the same
            assert near(r["rx_mbit_s"], 8 * RX_RATE / 1e6, 1) and near(r["tx_mbit_s"], 8 * TX_RATE / 1e6, 1), r


def test_mean_and_standard_deviation(rolled_this_month):
    rows = by(rolled_this_month.answer("Mean and standard deviation"), "host", "gpu_index")
    assert set(rows) == set(GPUS)
    for key, (util, _, _, mem, _) in GPUS.items():
        r = rows[key]
        assert (r["util_time_mean_pct"], r["util_mean_pct"], r["util_std_pct"]) == (util, util, 0.0), r
        assert (r["util_min_pct"], r["util_max_pct"]) == (util, util), r
        assert near(r["mem_used_mean_gib"], mem / 2**30, 1), r


def test_hottest_and_faulty_gpus_from_the_daily_rollup(rolled):
    hot = rolled.answer("ran hottest over the last 7 days")
    assert [(r["host"], r["gpu_index"], r["temp_max_c"]) for r in hot][:2] == [("gpu02", 1, 83), ("gpu01", 0, 70)]
    assert hot[0]["throttled_samples"] == RUNS and hot[0]["temp_mean_c"] == 83
    faulty = rolled.answer("ECC errors or throttling over the last 30 days")
    assert [(r["host"], r["gpu_index"], r["ecc_volatile_max"], r["throttled_samples"], r["throttled_pct"])
            for r in faulty] == [("gpu02", 1, 2, RUNS, 100.0)]


def test_weekly_summary(rolled):
    rows = rolled.answer("Weekly GPU summary")
    for host in ("gpu01", "gpu02"):
        mine = [r for r in rows if r["host"] == host]
        assert sum(r["samples"] for r in mine) == RUNS * sum(1 for k in GPUS if k[0] == host)
        assert {(r["util_min"], r["util_max"]) for r in mine} == {(0, 90 if host == "gpu01" else 50)}


def combine(column: str) -> str:
    """How a rollup column combines over a longer bucket: minimums by min, maximums by max, the rest by sum."""
    if column.endswith("_min"):
        return "min"
    if "_max" in column or column in ("mem_total_bytes", "cpu_logical", "fs_max_used_pct"):
        return "max"
    return "sum"


def test_hourly_reaggregates_exactly_into_daily(rolled):
    """The doc's promise: summing gpu_hourly (host_hourly) over a day gives gpu_daily (host_daily)."""
    pairs = (("gpu_hourly", "gpu_daily", ("host", "gpu_uuid")), ("host_hourly", "host_daily", ("host",)))
    for fine, coarse, keys in pairs:
        columns = [c for c, _ in schemas()[coarse] if c not in ("ts", "host", "gpu_uuid", "gpu_index", "name")]
        agg = ", ".join(f"{combine(c)}({c}) AS {c}" for c in columns)
        summed = by(rolled.query(f"SELECT date_trunc('day', ts) AS ts, {', '.join(keys)}, {agg} FROM {fine} "
                                 "GROUP BY ALL"), "ts", *keys)
        daily = by(rolled.query(f"SELECT * FROM {coarse}"), "ts", *keys)
        assert daily and summed.keys() == daily.keys(), coarse
        for k, row in daily.items():
            for c in columns:
                assert summed[k][c] == pytest.approx(row[c]), (coarse, k, c)
