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

            _pw_cache[uid] = pwd.getpwuid(uid).pw_name
        except (KeyError, ImportError):
            _pw_cache[uid] = str(uid)
    return _pw_cache[uid]


def proc_argv(pid):
    """argv of a process from /proc, as a list of str; [] for kernel threads and zombies."""
    from .redact import MAX_INPUT

    # bounded: a process may hold megabytes of arguments, and only the first MAX_COMMAND characters are shown
    raw = read_bytes(f"{PROC}/{pid}/cmdline", most=MAX_INPUT)
    if not raw:
        return []
    if raw.endswith(b"\x00"):
        raw = raw[:-1]
    return [text(a) for a in raw.split(b"\x00")]


def proc_comm(pid):
    return text(read_bytes(f"{PROC}/{pid}/comm").rstrip(b"\n"))


def command_from_argv(argv, comm):
    """Redacted, capped command line; ``[comm]`` for a kernel thread (empty argv)."""
    from .redact import redact_argv

    if not argv:
        return f"[{comm}]" if comm is not None else None
    return redact_argv(argv)


def owner_and_command(pid):
    """(user, redacted command) of a live pid, or (None, None) if it vanished or cannot be read.

    Used for GPU processes and accounting records, whose pids come from NVML, not from a /proc scan.
    """
    psutil = get_psutil()
    if psutil is not None:
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
    try:
        uid = os.stat(f"{PROC}/{pid}").st_uid
    except OSError:
        return None, None
    try:
        argv = proc_argv(pid)
        comm = proc_comm(pid) if not argv else None
    except FileNotFoundError:
        return None, None
    except OSError:
        return user_name(uid), None
    return user_name(uid), command_from_argv(argv, comm)


def python_version():
    return "{}.{}.{}".format(*sys.version_info[:3])
