"""processes.others_hidden: whether /proc hides other users' processes from the collecting account (hidepid=).

Two parts: the kernel's rule, worked through with a /proc whose mounts and capabilities the test writes; and
the real thing, a proc filesystem mounted with hidepid= in a temporary folder (root only, as CI runs), read by
the collector run as `nobody`, and checked against what that account can actually see there.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from collectors import _util, processes

ROOT = Path(__file__).resolve().parents[2]
CAP_SYS_PTRACE_ONLY = f"{1 << 19:016x}"
NOBODY = 65534


def fake_proc(tmp_path, monkeypatch, options, capeff="0000000000000000", mount_at=None):
    """A /proc holding only self/mounts (a proc mount with `options` at this folder, or at `mount_at`) and
    self/status (CapEff), with the collector pointed at it."""
    root = tmp_path / "proc"
    (root / "self").mkdir(parents=True)
    at = str(mount_at or root).replace(" ", "\\040")
    (root / "self" / "mounts").write_text(
        "sysfs /sys sysfs rw,nosuid 0 0\n"
        f"proc {at} proc rw,nosuid,nodev,noexec,relatime{options} 0 0\n"
        "tmpfs /run tmpfs rw 0 0\n")
    (root / "self" / "status").write_text(f"Name:\tpython3\nCapInh:\t0000000000000000\nCapEff:\t{capeff}\n")
    (root / "1").mkdir()  # a process, this test's user's (the test's files are)
    (root / "1" / "stat").write_text("1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n")
    monkeypatch.setattr(processes, "PROC", str(root))
    monkeypatch.setattr(_util, "PROC", str(root))
    return root


@pytest.mark.parametrize(("options", "capeff", "others_readable", "hidden"), [
    ("", "0000000000000000", False, False),                             # no hidepid: nothing hidden
    (",hidepid=0", "0000000000000000", False, False),
    (",hidepid=off", "0000000000000000", False, False),
    (",hidepid=invisible", "0000000000000000", False, True),            # no other user's process to read
    (",hidepid=2", "0000000000000000", False, True),                    # older kernels write the number
    (",hidepid=noaccess", "0000000000000000", False, True),
    (",hidepid=1", "0000000000000000", False, True),
    (",hidepid=ptraceable", "0000000000000000", False, True),
    (",hidepid=4", "0000000000000000", False, True),
    (",hidepid=invisible,subset=pid", "0000000000000000", False, True),
    (",hidepid=invisible", "0000000000000000", True, False),            # it reads one: exempt (gid=, ...)
    (",hidepid=ptraceable,gid=4242", "0000000000000000", True, False),  # whatever the options say
    (",hidepid=invisible", CAP_SYS_PTRACE_ONLY, False, False),          # root: it may ptrace every process
    (",hidepid=invisible", "000001ffffffffff", False, False),           # root's full set
    (",hidepid=invisible", f"{(1 << 41) - 1 - (1 << 19):016x}", False, True),  # all but CAP_SYS_PTRACE
    (",hidepid=7", "0000000000000000", False, True),                    # a value not known here: the kernel
    (",hidepid=7", "0000000000000000", True, False),
    (",hidepid=7", CAP_SYS_PTRACE_ONLY, False, None),                   # ... or not known
])
def test_the_kernels_answer(tmp_path, monkeypatch, options, capeff, others_readable, hidden):
    """The fake /proc lists one process, whose files belong to this test's user: "another user's" is had by
    making this process another uid."""
    fake_proc(tmp_path, monkeypatch, options, capeff)
    if others_readable:
        monkeypatch.setattr(os, "geteuid", lambda: os.stat(tmp_path / "proc" / "1").st_uid + 1)
    assert processes.others_hidden() is hidden


def test_the_proc_mount_on_top_decides(tmp_path, monkeypatch):
    """/proc mounted twice (a container's runtime, then a hardened remount): the later line is the one seen."""
    root = fake_proc(tmp_path, monkeypatch, "")
    mounts = root / "self" / "mounts"
    mounts.write_text(mounts.read_text() + f"proc {root} proc rw,hidepid=invisible 0 0\n")
    assert processes.others_hidden() is True


def test_a_proc_mounted_elsewhere_says_nothing_of_this_one(tmp_path, monkeypatch):
    fake_proc(tmp_path, monkeypatch, ",hidepid=invisible", mount_at=tmp_path / "other proc")
    assert processes.others_hidden() is None


def test_a_path_with_a_space_is_matched_unescaped(tmp_path, monkeypatch):
    root = tmp_path / "my proc"
    (root / "self").mkdir(parents=True)
    (root / "self" / "mounts").write_text("proc /tmp/my\\040proc proc rw 0 0\n"
                                         f"proc {str(root).replace(' ', chr(92) + '040')} proc rw,hidepid=2 0 0\n")
    (root / "self" / "status").write_text("CapEff:\t0000000000000000\n")
    monkeypatch.setattr(processes, "PROC", str(root))
    assert processes.others_hidden() is True


def test_no_mounts_file_is_not_known(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "PROC", str(tmp_path))
    assert processes.others_hidden() is None


# -- the real kernel --------------------------------------------------------------------------------------
PROBE = """
import json, os, sys
sys.path.insert(0, sys.argv[2])
import collectors._util as u, collectors.processes as p
u.PROC = p.PROC = sys.argv[1]
got = p.collect({"top_n": 1000})
readable = 0
for name in os.listdir(sys.argv[1]):
    if name.isdigit():
        try:
            open(os.path.join(sys.argv[1], name, "stat"), "rb").close()
            readable += 1
        except OSError:
            pass
print(json.dumps({"hidden": got["others_hidden"], "total": got["total"], "readable": readable,
                  "users": sorted({t["user"] for t in got["top"]})}))
"""


@pytest.fixture
def hidepid_mount():
    """mount(options) -> a proc filesystem mounted with those options in a folder of its own; a copy of the
    collectors and an interpreter `nobody` can read and run. Root only, and where mounting is allowed."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if os.geteuid() != 0 or python is None or not shutil.which("mount"):
        pytest.skip("needs root, mount(8) and /usr/bin/python3 (CI runs as root)")
    # Before Linux 5.8 the proc mounts of a PID namespace share one superblock: hidepid= on a new mount would
    # change this machine's /proc (3.x), or be ignored (4.x). From 5.8 on, each mount has its own options.
    if tuple(int(n) for n in re.findall(r"\d+", os.uname().release)[:2]) < (5, 8):
        pytest.skip(f"needs Linux 5.8 or later (per-mount proc options), this is {os.uname().release}")
    # pytest's tmp_path sits in a folder only root may enter: a folder of /tmp that nobody can
    top = Path(tempfile.mkdtemp(prefix="fleetscope-hidepid-", dir="/tmp"))
    place = top / "readable"
    shutil.copytree(ROOT / "collectors", place / "collectors", ignore=shutil.ignore_patterns("__pycache__"))
    for path in (top, place, *place.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    mounted = []

    def mount(options):
        where = top / f"proc{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "proc", "-o", options, "proc", str(where)],
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            pytest.skip(f"cannot mount proc here: {done.stderr.strip()}")
        mounted.append(where)
        listed = [line.split()[3] for line in Path("/proc/self/mounts").read_text().splitlines()
                  if line.split()[1] == str(where)]
        assert listed and all(o in listed[-1].split(",") for o in options.split(",") if o.startswith("hidepid")), \
            f"the mount at {where} does not have its own options: {listed}"
        return where

    def probe(where, as_nobody=True, groups=()):
        who = {"user": NOBODY, "group": NOBODY, "extra_groups": list(groups)} if as_nobody else {}
        done = subprocess.run([python, "-sE", "-c", PROBE, str(where), str(place)], capture_output=True,
                              text=True, timeout=60, cwd="/", **who)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    yield mount, probe
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], timeout=30, check=False)
    if not any(os.path.ismount(where) for where in mounted):  # never remove what is still a mounted /proc
        shutil.rmtree(top)


def test_a_real_hidepid_mount_is_reported_and_what_it_hides_is_missing(hidepid_mount):
    mount, probe = hidepid_mount
    plain = probe(mount("rw"))
    assert plain["hidden"] is False
    assert "root" in plain["users"]  # nobody sees root's processes where /proc hides nothing

    hidden = probe(mount("hidepid=invisible"))
    assert hidden["hidden"] is True
    assert "root" not in hidden["users"]
    assert hidden["total"] == hidden["readable"] < plain["total"]

    noaccess = probe(mount("hidepid=noaccess"))
    assert noaccess["hidden"] is True
    assert "root" not in noaccess["users"]


def test_root_and_the_gid_group_see_everything(hidepid_mount):
    mount, probe = hidepid_mount
    where = mount(f"hidepid=invisible,gid={NOBODY + 1}")
    as_root = probe(where, as_nobody=False)
    assert as_root["hidden"] is False and "root" in as_root["users"]
    in_group = probe(where, groups=[NOBODY + 1])
    assert in_group["hidden"] is False and "root" in in_group["users"]
    assert probe(where)["hidden"] is True  # the same mount, without the group


def test_ptraceable_is_not_lifted_by_the_gid_group(hidepid_mount):
    mount, probe = hidepid_mount
    got = probe(mount(f"hidepid=ptraceable,gid={NOBODY + 1}"), groups=[NOBODY + 1])
    assert got["hidden"] is True and "root" not in got["users"]

