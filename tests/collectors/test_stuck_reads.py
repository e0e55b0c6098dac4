"""A command line the kernel does not hand over costs a bounded wait, not the collection (_util.read_many).

Reading /proc/<pid>/cmdline takes the lock of that process's memory map; a thread of it stuck in the kernel (a
page fault on a hung NFS mount, a GPU driver waiting on a GPU that fell off the bus) can hold it for ever, and
the read with it: the collection then lost its processes and every subsystem after them (GPUs, host, disks) at
its time limit. Such a lock cannot be made on demand here, so a read that never returns stands in for it: a
named pipe in place of the cmdline file, whose open() waits for a writer that never comes. Each test lets its
stuck readers go at the end (opens the pipes for writing): none is left blocked in the kernel (checked by
reading the threads' wchan after these tests), only idle reader threads.
"""

import os
import shutil
import time
from pathlib import Path

import pytest

import collectors
from collectors import _util, processes

DATA = Path(__file__).parent / "data"
WAIT = 0.5  # STUCK_READ_S in these tests: short, with room for a loaded machine to start a thread


@pytest.fixture
def stuck(monkeypatch):
    """pipe(path) -> a named pipe at `path` that blocks whoever opens it for reading; the reader state reset, a
    short STUCK_READ_S, and the pipes' readers released at the end."""
    pipes = []
    _util.stuck_reads.clear()  # module state: one collection per process in real use
    del _util._reader[:]
    monkeypatch.setattr(_util, "STUCK_READ_S", WAIT)

    def pipe(path):
        path = Path(path)
        if path.exists():
            path.unlink()
        os.mkfifo(path)
        pipes.append(path)
        return path

    yield pipe
    for path in pipes:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # the blocked reader opens, reads EOF, goes on
        except OSError:
            pass  # no reader waiting
    _util.stuck_reads.clear()
    del _util._reader[:]


def test_a_read_that_does_not_return_is_left_out_and_the_rest_are_read(tmp_path, stuck):
    a, c = tmp_path / "a", tmp_path / "c"
    a.write_bytes(b"first")
    c.write_bytes(b"third")
    b = stuck(tmp_path / "b")
    began = time.monotonic()
    got = _util.read_many([str(a), str(b), str(c), str(tmp_path / "missing")])
    took = time.monotonic() - began
    assert got[:3] == [b"first", None, b"third"]
    assert isinstance(got[3], FileNotFoundError)
    assert _util.stuck_reads == [str(b)]
    assert WAIT <= took < WAIT + 1.0  # one wait for the stuck read, not one per path
    # the next call gets a new reader: the stuck one still waits on the pipe
    assert _util.read_many([str(c)]) == [b"third"]


def test_after_the_limit_of_stuck_reads_the_rest_are_not_tried(tmp_path, stuck):
    ok = tmp_path / "ok"
    ok.write_bytes(b"fine")
    pipes = [str(stuck(tmp_path / f"p{i}")) for i in range(_util.MAX_STUCK_READS + 1)]
    began = time.monotonic()
    got = _util.read_many([*pipes, str(ok)])
    took = time.monotonic() - began
    assert got == [None] * len(pipes) + [None]
    assert _util.stuck_reads == pipes[:_util.MAX_STUCK_READS]
    assert took < (_util.MAX_STUCK_READS + 1) * WAIT + 1.0  # the limit's waits, and no more
    began = time.monotonic()
    assert _util.read_many([str(ok)]) == [None]  # the collection has waited enough: not tried
    assert time.monotonic() - began < WAIT


def test_a_slow_but_moving_series_of_reads_is_not_taken_for_stuck(tmp_path, stuck, monkeypatch):
    """The wait is per read: many reads that each finish in time are all read, however long they take in all."""
    files = []
    for i in range(10):
        files.append(tmp_path / f"f{i}")
        files[-1].write_bytes(str(i).encode())
    real = _util.read_bytes

    def slow(path, size=4096, most=None):
        time.sleep(WAIT / 5)  # 10 of them: twice the wait in all
        return real(path, size, most)

    monkeypatch.setattr(_util, "read_bytes", slow)
    assert _util.read_many([str(f) for f in files]) == [str(i).encode() for i in range(10)]
    assert _util.stuck_reads == []


@pytest.fixture
def proc_tree(tmp_path, monkeypatch):
    """The fixture /proc (test_proc_values.py's, its numbers worked out there) copied, psutil off."""
    root = tmp_path / "proc"
    shutil.copytree(DATA / "proc", root)
    monkeypatch.setenv("FLEETSCOPE_PSUTIL", "0")
    for module in (_util, processes):
        monkeypatch.setattr(module, "PROC", str(root))
    monkeypatch.setattr(_util, "_boot_time", [])
    monkeypatch.setattr(os, "getpid", lambda: 4000)  # data/proc/4000 stands for the collector itself
    return root


def test_a_stuck_process_costs_only_its_own_command(proc_tree, stuck):
    """Process 811 (the heaviest) has a command line that is never handed over: it keeps its user and numbers,
    its command is null, the others are whole, and the document's errors say which and why."""
    stuck(proc_tree / "811" / "cmdline")
    ctx = {"top_n": 15, "errors": []}
    began = time.monotonic()
    got = processes.collect(ctx)
    assert time.monotonic() - began < WAIT + 1.0
    rows = {p["pid"]: p for p in got["top"]}
    assert rows[811]["command"] is None and rows[811]["user"] is not None and rows[811]["cpu_time_s"] > 0
    others = [p for pid, p in rows.items() if pid != 811]
    assert others and all(p["command"] for p in others)
    assert rows[1220]["command"] == "/usr/bin/redis-server *:6379"  # read after the stuck one, by a new thread
    (error,) = ctx["errors"]
    assert (error["subsystem"], error["type"]) == ("processes.command", "Timeout")
    assert "process 811 " in error["message"] and f"{WAIT:g} s" in error["message"]


def test_a_stuck_gpu_process_costs_only_its_command(tmp_path, monkeypatch, stuck, make_fake_nvml, gpu_worker):
    """The GPU processes' commands are read once for all GPUs, by the same reader: the fake's running compute
    process is stuck; the GPUs, their other readings and the rest of the document are there."""
    root = tmp_path / "proc"
    (root / str(gpu_worker.pid)).mkdir(parents=True)
    (root / str(gpu_worker.pid) / "comm").write_text("python3\n")
    stuck(root / str(gpu_worker.pid) / "cmdline")
    monkeypatch.setenv("FLEETSCOPE_PSUTIL", "0")
    monkeypatch.setattr(_util, "PROC", str(root))
    make_fake_nvml()
    began = time.monotonic()
    document = collectors.collect(only=["gpus"])
    assert time.monotonic() - began < WAIT + 2.0
    gpus = document["gpus"]["devices"]
    assert len(gpus) == 2 and all(g["name"] for g in gpus)
    (mine,) = [p for g in gpus for p in g["processes"] or [] if p["pid"] == gpu_worker.pid]
    assert mine["user"] is not None and mine["command"] is None and mine["gpu_mem_bytes"]
    (error,) = document["errors"]
    assert error["subsystem"] == "gpus.command" and f"process {gpu_worker.pid} " in error["message"]


def test_a_stuck_reader_that_wakes_up_stops_where_it_was_given_up(tmp_path, stuck, monkeypatch):
    """It reads nothing after the stuck path (its batch was handed to a new thread) and its thread ends."""
    after = tmp_path / "after"
    after.write_bytes(b"x")
    reads = []
    real = _util.read_bytes

    def counted(path, size=4096, most=None):
        reads.append(path)
        return real(path, size, most)

    monkeypatch.setattr(_util, "read_bytes", counted)
    pipe = stuck(tmp_path / "pipe")
    assert _util.read_many([str(pipe), str(after)]) == [None, b"x"]
    os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))  # the stuck read returns now
    time.sleep(0.2)
    assert reads.count(str(after)) == 1  # by the new thread only
    assert _util.read_many([str(after)]) == [b"x"]  # the new reader still serves


def test_an_error_that_is_not_an_os_error_is_raised_as_before(tmp_path, stuck, monkeypatch):
    """A defect in reading is the caller's exception (its subsystem's error entry), not a process 'stuck'."""
    good = tmp_path / "good"
    good.write_bytes(b"g")

    def broken(path, size=4096, most=None):
        raise ValueError("a defect")

    monkeypatch.setattr(_util, "read_bytes", broken)
    monkeypatch.setattr(_util, "STUCK_READ_S", 5.0)  # a slow thread start is not taken for a stuck read
    began = time.monotonic()
    with pytest.raises(ValueError, match="a defect"):
        _util.read_many([str(good)])
    assert time.monotonic() - began < 5.0 and _util.stuck_reads == []


def test_without_a_thread_to_start_the_paths_are_read_here(tmp_path, stuck, monkeypatch):
    """A host at its thread limit: the reads happen in the caller's thread, as before there was a reader."""
    import _thread

    def refuse(*args):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(_thread, "start_new_thread", refuse)
    files = [tmp_path / f"f{i}" for i in range(3)]
    for i, f in enumerate(files):
        f.write_bytes(bytes([65 + i]))
    got = _util.read_many([str(f) for f in files] + [str(tmp_path / "missing")])
    assert got[:3] == [b"A", b"B", b"C"] and isinstance(got[3], FileNotFoundError)
    assert _util.stuck_reads == [] and _util._reader == []
