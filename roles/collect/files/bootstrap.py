# fleetscope's collector loader. The fleetscope_collect action runs `python3 -c STUB` on a host (STUB, in
# fleetscope/stage.py, reads this file from stdin and runs it), then the rest of stdin is: one line with the
# byte length of the JSON arguments, the arguments, then the collector bundle (fleetscope.stage.collector_bundle):
# a line with the byte lengths of its four parts, then the parts: the package's sources and its bytecode, the
# shipped pynvml's sources and its bytecode. Sources are zlib-compressed JSON {module name: [is package,
# source]}; a bytecode part holds an entry per Python the controller compiled it with: the magic number, the
# length (4 bytes each), zlib-compressed marshal {module name: code}. The entry with this Python's magic, if
# any, runs instead of the sources (compiling the sources is most of what the collector costs).
# The package is imported from memory: nothing is written to the host, nothing stays behind. The answer is
# one JSON object on stdout, shaped like an Ansible module's result.
# Every run pays for what this file imports, so it takes the C half of json (below) where it can.
import _thread
import marshal
import os
import sys
import time
import zlib

try:  # speed: json's C accelerator on its own; `import json` also imports re and enum (~10 ms of CPU)
    from _json import encode_basestring_ascii, make_encoder, make_scanner
except ImportError:
    make_scanner = None


class JSONDefaults:
    """The settings _json's scanner reads off a json.JSONDecoder: those of json.loads (float() reads NaN and
    Infinity as json's parse_constant does)."""

    strict, object_hook, object_pairs_hook = True, None, None
    parse_float, parse_int, parse_constant = float, int, float


def loads(data):
    """json.loads(data), for the controller's ASCII JSON; the json module when the fast path cannot."""
    if make_scanner is not None:
        try:
            text = data.decode()
            value, end = make_scanner(JSONDefaults)(text, 0)
            if end == len(text):
                return value
        except Exception:  # json.loads raises the proper error
            pass
    import json

    return json.loads(data)


def not_serializable(value):
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value):
    """json.dumps(value): the very encoder json.dumps uses, with its default settings."""
    if make_scanner is not None:
        try:
            encode = make_encoder({}, not_serializable, encode_basestring_ascii, None, ": ", ", ", False, False, True)
            return "".join(encode(value, 0))
        except Exception:  # json.dumps raises the proper error
            pass
    import json

    return json.dumps(value)


ANSWERING = _thread.allocate_lock()


def answer(result, code=0):
    """Write the answer and end the process, once: the time limit's thread and the collector may both try."""
    if not ANSWERING.acquire(False):
        ANSWERING.acquire()  # the other one answers and ends the process: wait for that
    try:
        text = dumps(result)
    except BaseException:  # a defect (a value JSON cannot hold): its traceback, for the controller to show
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    finally:  # a controller that went away (a closed pipe) must not leave the process stuck where it was
        os._exit(code)


if sys.version_info < (3, 8):  # noqa: UP036 - the host's python, not ours
    answer({"failed": True, "msg": "fleetscope's collector needs a minimum of Python version 3.8 on the host, "
            f"found {sys.version.split()[0]}"}, 1)

data = sys.stdin.buffer.read()
head, _, rest = data.partition(b"\n")
args = loads(rest[:int(head)])
head, _, rest = rest[int(head):].partition(b"\n")
parts, start = [], 0
for size in head.split():
    parts.append(rest[start:start + int(size)])
    start += int(size)
ModuleSpec = type(sys.__spec__)  # importlib.machinery.ModuleSpec, without importing importlib
# the magic number of this Python's bytecode; importlib keeps it in a module that is always loaded
MAGIC = getattr(sys.modules.get("_frozen_importlib_external"), "MAGIC_NUMBER", None)


def unpack(sources, code):
    """The modules of one source part, and of its bytecode part's entry for this Python if it has one."""
    modules = loads(zlib.decompress(sources)) if sources else {}
    at = 0
    while MAGIC and at + 8 <= len(code):  # entries: magic number (4 bytes), length (4 bytes), bytecode
        size = int.from_bytes(code[at + 4:at + 8], "big")
        if code[at:at + 4] == MAGIC:
            try:
                for name, compiled in marshal.loads(zlib.decompress(code[at + 8:at + 8 + size])).items():
                    modules[name].append(compiled)
            except Exception:  # the sources are there: they are compiled instead
                pass
            break
        at += 8 + size
    return modules


modules = unpack(parts[0], parts[1])
# speed: the shipped pynvml (330 KB of source) is unpacked only when the collector imports it
shipped = parts[2:]


class Bundled:
    """Finds and loads the shipped modules from `modules`, ahead of anything installed on the host."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        global shipped
        if name not in modules and shipped and name.startswith("fleetscope_collectors."):
            modules.update(unpack(*shipped))
            shipped = None
        if name not in modules:
            return None
        return ModuleSpec(name, cls, is_package=modules[name][0])  # what importlib.util.spec_from_loader gives

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        name = module.__name__
        entry = modules[name]
        if len(entry) < 3:  # no bytecode for this Python: compile the source
            entry.append(compile(entry[1], "<fleetscope>/{}.py".format(name.replace(".", "/")), "exec"))
        exec(entry[2], module.__dict__)


collection = None


def time_limit(seconds):
    """After ``seconds``, answer with what the collector has (the subsystem it is in, and those after it, as
    errors "Timeout"), or fail as timed out if it had not started. A thread, not SIGALRM: a signal handler
    runs only once the call the collector is in returns, and an NVML call into a hung driver, or statvfs of
    a dead network mount, does not; this thread runs meanwhile (both calls let go of the GIL)."""
    time.sleep(seconds)
    limit = f"the collector's time limit ({seconds} s) was reached"
    if collection is None:
        answer({"failed": True, "timed_out": True, "msg": f"collector timed out after {seconds} s on the host"},
               1)
    answer(result(collection.document(stopped=limit)))


def result(document):
    # the magic number tells the controller which bytecode entry to send this host next time (stage.for_magic)
    return {"changed": False, "document": document, "python_magic": MAGIC.hex() if MAGIC else None,
            "python_implementation": sys.implementation.name}


sys.meta_path.insert(0, Bundled)
if args.get("timeout", 0) > 0:
    _thread.start_new_thread(time_limit, (args["timeout"],))
from fleetscope_collectors import Collection  # noqa: E402

collection = Collection(top_n=args["top_n"], accounting_since=args.get("accounting_since") or None,
                        only=args.get("only"), exiting=True)  # answer() ends the process: NVML ends with it
answer(result(collection.run()))
