"""Small helpers shared by the subsystems: psutil selection, /proc reads, times, users, text.

Standard library only, relative imports only (the package also ships as
``ansible.module_utils.fleetscope_collectors``), Python 3.8+.
"""

import os
import sys
import time

PROC = "/proc"
REDACTED_UNKNOWN = None

_YEAR_10000 = 253402300800  # POSIX seconds at 10000-01-01, beyond datetime
_pw_cache = {}
_no_psutil = []
_boot_time = []


def get_psutil():
    """The psutil module where the collector uses it, else None (the subsystems then read /proc).

    FLEETSCOPE_PSUTIL=1: psutil whenever it is importable; 0: never; unset (or anything else): only on a host
    without /proc/stat, that is not Linux. speed: on Linux the /proc path reads the files psutil reads, with
    the same definitions (tests/collectors/test_collect_fallback.py), without psutil's import (about 30 ms of
    CPU) and its objects per process: a collection costs about half as much CPU (docs/benchmarks.md)."""
    choice = os.environ.get("FLEETSCOPE_PSUTIL", "")
    if choice == "0" or _no_psutil or (choice != "1" and os.path.exists(PROC + "/stat")):
        return None
    try:
        import psutil
    except ImportError:
        _no_psutil.append(True)  # speed: each failed import searches sys.path again (~0.1 ms), once is enough
        return None
    return psutil


def read_text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def read_bytes(path, size=4096, most=None):
    """A file's bytes (at most about ``most`` of them). speed: os.open/os.read, without the io objects open()
    builds (~5 us a file), which counts when every process is read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = [os.read(fd, size)]
        got = len(chunks[0])
        while chunks[-1] and (most is None or got < most):
            chunks.append(os.read(fd, size))
            got += len(chunks[-1])
    finally:
        os.close(fd)
    return b"".join(chunks)


def unescape_mount(field):
    """A field of /proc/self/mounts as bytes: it writes space, tab, newline and backslash as octal escapes."""
    for code, char in ((b"\\040", b" "), (b"\\011", b"\t"), (b"\\012", b"\n"), (b"\\134", b"\\")):
        field = field.replace(code, char)
    return field


def error_entry(subsystem, exc):
    """An entry of the document's errors: what failed, how."""
    return {"subsystem": subsystem, "type": type(exc).__name__, "message": text(str(exc))[:500]}


def counter(value):
    """A cumulative counter as the document carries it: an int, or None past what a signed 64-bit integer
    holds (a u64 the kernel wrapped to near 2**64; the warehouse stores BIGINT)."""
    value = int(value)
    return value if 0 <= value <= 2**63 - 1 else None


def text(value):
    """A JSON-safe str from str/bytes (old pynvml returns bytes; argv may hold undecodable bytes)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\x00")
    value = str(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from surrogateescape: not valid JSON/UTF-8
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def iso_z(epoch, micro=False):
    """UTC ISO 8601 with Z for a POSIX time in seconds; None stays None."""
    if epoch is None:
        return None
    if 0 <= epoch < _YEAR_10000:  # speed: time.gmtime, not datetime, whose import costs ~3 ms of CPU
        seconds = int(epoch)
        micros = round((epoch - seconds) * 1e6)  # half to even, as datetime.fromtimestamp rounds
        if micros == 1000000:
            seconds, micros = seconds + 1, 0
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        return f"{stamp}.{micros:06d}Z" if micro else stamp + "Z"
    import datetime  # before 1970, after 9999 or not a number: datetime's answer, or its error

    dt = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    if micro:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def user_hz():
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


def page_size():
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4096


def boot_time():
    """Boot time as POSIX seconds, from the btime line of /proc/stat (what psutil reads too)."""
    if not _boot_time:
        for line in read_text(PROC + "/stat").splitlines():
            if line.startswith("btime "):
                _boot_time.append(float(line.split()[1]))
                break
        else:
            raise RuntimeError("no btime in /proc/stat")
    return _boot_time[0]


def user_name(uid):
    """Login name for a uid, or the uid as a string when the password database does not know it."""
    if uid is None:
        return None
    if uid not in _pw_cache:
        try:
            import pwd

            _pw_cache[uid] = text(pwd.getpwuid(uid).pw_name)  # a name that is no UTF-8: decoded with surrogates
        except (KeyError, ImportError):
            _pw_cache[uid] = str(uid)
    return _pw_cache[uid]


def argv_from_cmdline(raw):
    """/proc/<pid>/cmdline's bytes as a list of str; [] for kernel threads and zombies."""
    if not raw:
        return []
    if raw.endswith(b"\x00"):
        raw = raw[:-1]
    return [text(a) for a in raw.split(b"\x00")]


def proc_comm(pid):
    return text(read_bytes(f"{PROC}/{pid}/comm").rstrip(b"\n"))


def command_from_argv(argv, comm, cut=False):
    """Redacted, capped command line; ``[comm]`` for a kernel thread (empty argv). ``cut``: argv is the start
    of a longer command line (redact_argv)."""
    from .redact import redact_argv

    if not argv:
        return f"[{comm}]" if comm is not None else None
    return redact_argv(argv, cut=cut)


def owner(pid):
    """The user a live pid runs as, or None (exited, or hidden from us); no command line is read."""
    psutil = get_psutil()
    if psutil is not None:
        try:
            return text(psutil.Process(pid).username())
        except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError):
            return None
    try:
        return user_name(os.stat(f"{PROC}/{pid}").st_uid)
    except OSError:
        return None


def owner_and_command(pid):
    """(user, redacted command) of a live pid, or (None, None) if it vanished or cannot be read: one pid of
    owners_and_commands."""
    return owners_and_commands([pid]).get(pid, (None, None))


def _psutil_owner_and_command(psutil, pid):
    """owner_and_command through psutil (hosts without /proc)."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            user = proc.username()
            try:
                argv = proc.cmdline()
            except psutil.ZombieProcess:  # exited, not yet reaped (a defunct CUDA job): its owner stays
                argv = []
            except psutil.AccessDenied:
                return user, None
            comm = proc.name() if not argv else None
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError):
        return None, None
    return text(user), command_from_argv([text(a) for a in argv], comm)


#: How long reading one command line may take before its process is taken for one stuck in the kernel, and
#: how many such reads a collection waits for: after that, the command lines not yet read are not tried.
STUCK_READ_S = 1.0
MAX_STUCK_READS = 3
#: The paths whose read did not finish within STUCK_READ_S, in this process (read_many).
stuck_reads = []
_reader = []  # [jobs, wake] of the reader thread, while it is not stuck


def read_many(paths, most=None, wait=None):
    """[each path's bytes, or the OSError reading it raised, or None where it was not read] in order, read by a
    helper thread. For reads that can wait on another process: /proc/<pid>/cmdline takes the lock of that
    process's memory map, which a thread of it stuck in the kernel (a page fault on a hung NFS mount, a GPU
    driver waiting on a GPU that fell off the bus) can hold for ever; `ps` hangs there too. Read here, a path
    whose read has not finished `wait` seconds (STUCK_READ_S) after the read before it, 1-2 x `wait` after it
    began, is left out (None, and named in stuck_reads) and the paths after it are read by a new thread; after
    MAX_STUCK_READS of them in the process, the rest are not tried. The stuck thread stays blocked until the
    process ends, and stops should it wake. Another exception than OSError is raised here, as a read in this
    thread would raise it. Where no thread can be started (a host at its limit), the paths are read in this
    thread, as before. speed: one thread for the process and one hand-over per call (a hand-over per path cost
    ~60 us, a tenth of a collection's CPU for 35 processes)."""
    wait = STUCK_READ_S if wait is None else wait
    results = [None] * len(paths)
    first = 0
    while first < len(paths) and len(stuck_reads) < MAX_STUCK_READS:
        job = _ReadJob(paths[first:], most)
        stuck = None
        if _hand_over(job):
            seen = 0
            while not job.done.acquire(timeout=wait):
                if job.next == seen:  # no read finished in `wait` s: the one at `seen` is stuck
                    job.cancelled = True  # its thread stops there, should it ever wake
                    stuck = seen
                    break
                seen = job.next
        else:
            _read_job(job)
        got = job.next if stuck is None else stuck  # results[:got] are written (next counts after each)
        results[first:first + got] = job.results[:got]
        if job.error is not None and stuck is None:
            raise job.error
        if stuck is None:
            break
        stuck_reads.append(paths[first + stuck])
        del _reader[:]  # that thread is stuck in the kernel: the next read gets another
        first += stuck + 1
    return results


class _ReadJob:
    __slots__ = ("paths", "most", "results", "next", "done", "cancelled", "error")

    def __init__(self, paths, most):
        import _thread

        self.paths, self.most, self.results, self.next = paths, most, [None] * len(paths), 0
        self.cancelled, self.error = False, None
        self.done = _thread.allocate_lock()
        self.done.acquire()  # released by the reader when it ends the job


def _hand_over(job):
    """Give ``job`` to the reader thread, started first where there is none; False where none can be started."""
    if not _reader:
        import _thread  # the bootstrap's own threads are _thread's too: no threading module to import

        jobs, wake = [], _thread.allocate_lock()
        wake.acquire()
        try:
            _thread.start_new_thread(_read_jobs, (jobs, wake))
        except RuntimeError:  # "can't start new thread"
            return False
        _reader[:] = [jobs, wake]
    jobs, wake = _reader
    jobs.append(job)
    wake.release()  # at most one job waits at a time: its caller waits for it
    return True


def _read_jobs(jobs, wake):
    while True:
        wake.acquire()
        job = jobs.pop(0)
        _read_job(job)
        if job.cancelled:  # it was stuck, and has been replaced: this thread ends
            return


def _read_job(job):
    """Read the job's paths in order, an OSError as a result; another exception ends the job for its caller to
    raise. A job given up as stuck is not read further."""
    try:
        for i, path in enumerate(job.paths):
            if job.cancelled:
                return
            try:
                job.results[i] = read_bytes(path, most=job.most)
            except OSError as e:
                job.results[i] = e
            job.next = i + 1
    except BaseException as e:  # noqa: BLE001 - a defect, raised in the caller's thread
        job.error = e
    finally:
        job.done.release()


def owners_and_commands(pids):
    """{pid: (user, redacted command)} for the live pids among ``pids``, as owner_and_command gives them; a
    pid that exited is left out. The command lines are read together through read_many: a process whose
    command line is not read in time has its user and a None command. With psutil (hosts without /proc) they
    are psutil's, read one by one in this thread."""
    psutil = get_psutil()
    if psutil is not None:
        out = {}
        for pid in pids:
            user, command = _psutil_owner_and_command(psutil, pid)
            if user is not None or command is not None:
                out[pid] = user, command
        return out
    from .redact import MAX_INPUT

    uids = {}
    for pid in pids:
        try:
            uids[pid] = os.stat(f"{PROC}/{pid}").st_uid
        except OSError:  # exited, or hidden from us (hidepid)
            continue
    lines = read_many([f"{PROC}/{pid}/cmdline" for pid in uids], most=MAX_INPUT)
    out = {}
    for (pid, uid), raw in zip(uids.items(), lines):
        if isinstance(raw, (FileNotFoundError, ProcessLookupError)):  # exited since
            continue
        if raw is None or isinstance(raw, OSError):  # stuck, or not ours to read
            out[pid] = user_name(uid), None
            continue
        argv = argv_from_cmdline(raw)
        try:
            comm = proc_comm(pid) if not argv else None
        except FileNotFoundError:
            continue
        except OSError:
            out[pid] = user_name(uid), None
            continue
        # read up to MAX_INPUT bytes: a command line that long may go on, its last word cut short
        out[pid] = user_name(uid), command_from_argv(argv, comm, cut=len(raw) >= MAX_INPUT)
    return out


def start_times(pids):
    """{pid: when it started, POSIX seconds} for the pids among ``pids`` whose start can be read: from
    /proc/<pid>/stat (ticks after boot, plus the boot time), or psutil's create_time. One process's start
    tells it from a later process given the same pid."""
    psutil = get_psutil()
    out = {}
    if psutil is not None:
        for pid in pids:
            try:
                out[pid] = psutil.Process(pid).create_time()
            except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
                continue
        return out
    try:
        boot = boot_time()
    except (OSError, RuntimeError, ValueError, IndexError):
        return out
    hz = user_hz()
    for pid in pids:
        try:
            raw = read_bytes(f"{PROC}/{pid}/stat")
            out[pid] = boot + int(raw[raw.rindex(b")") + 2:].split(None, 20)[19]) / hz  # starttime, field 22
        except (OSError, ValueError, IndexError):  # exited, hidden (hidepid), or not as the kernel writes it
            continue
    return out


def note_stuck(ctx, subsystem, since):
    """Add to the document's errors (ctx["errors"]) an entry naming the command lines read_many gave up on
    since ``since`` (len(stuck_reads) then), if any."""
    stuck = [path.split("/")[-2] for path in stuck_reads[since:]]
    if not stuck:
        return
    which = f"the command line of process {stuck[0]}" if len(stuck) == 1 else \
        f"the command lines of processes {', '.join(stuck)}"
    message = (f"{which} could not be read in {STUCK_READ_S:g} s (a process stuck in the kernel: a hung NFS mount, "
               f"a GPU that fell off the bus?): {'its command is' if len(stuck) == 1 else 'their commands are'} null")
    if len(stuck_reads) >= MAX_STUCK_READS:
        message += f"; after {MAX_STUCK_READS} such reads no other command line is read"
    ctx.setdefault("errors", []).append({"subsystem": subsystem, "type": "Timeout", "message": message})


def python_version():
    return "{}.{}.{}".format(*sys.version_info[:3])


def shown_utc_span(text):
    """(earliest, latest) POSIX seconds a start shown as ``text`` can be: a time to the minute stands for that
    whole minute; a few seconds of slack either way for the host's boot time, which the clock's adjustments
    move (the start is boot time + ticks). ValueError where it is no such time. Here, not in the admin module
    alone: `fleetscope admin` checks --started with it before connecting (fleetscope/cli.py)."""
    import datetime

    value = text.strip().replace("T", " ").rstrip("Z").strip()
    for form, span in (("%Y-%m-%d %H:%M:%S", 1), ("%Y-%m-%d %H:%M", 60)):
        try:
            t = datetime.datetime.strptime(value, form).replace(tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            continue
        return t - 5, t + span + 5
    raise ValueError(f"not a time as the report shows it (2026-11-23 09:00): {text!r}")
