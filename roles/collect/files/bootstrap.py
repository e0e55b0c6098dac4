# fleetscope's collector loader. The fleetscope_collect action runs `python3 -c STUB` on a host (STUB, in
# fleetscope/stage.py, reads this file from stdin and runs it), then the rest of stdin is: one line with the
# byte length of the JSON arguments, the arguments, then the collector bundle (fleetscope.stage.collector_bundle):
# the package's length on a line, the package, then the shipped pynvml (possibly empty), each as zlib-compressed
# JSON {module name: [is package, source]}.
# The package is imported from memory: nothing is written to the host, nothing stays behind. The answer is
# one JSON object on stdout, shaped like an Ansible module's result.
# Every run pays for what this file imports, so it takes the C halves of json and signal (below) where it can.
import os
import sys
import zlib

try:  # speed: the C module under signal; signal.py imports enum and makes enums of its constants (~5 ms)
    import _signal as signal
except ImportError:
    import signal

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


def answer(result, code=0):
    sys.stdout.write(dumps(result))
    sys.stdout.flush()
    os._exit(code)


if sys.version_info < (3, 8):  # noqa: UP036 - the host's python, not ours
    answer({"failed": True, "msg": "fleetscope's collector needs a minimum of Python version 3.8 on the host, "
            f"found {sys.version.split()[0]}"}, 1)

data = sys.stdin.buffer.read()
head, _, rest = data.partition(b"\n")
args = loads(rest[:int(head)])
head, _, rest = rest[int(head):].partition(b"\n")
sources = loads(zlib.decompress(rest[:int(head)]))
# speed: the shipped pynvml (330 KB of source) is decompressed only when the collector imports it
shipped = rest[int(head):]
ModuleSpec = type(sys.__spec__)  # importlib.machinery.ModuleSpec, without importing importlib


class Bundled:
    """Finds and loads the shipped modules from `sources`, ahead of anything installed on the host."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        global shipped
        if name not in sources and shipped and name.startswith("fleetscope_collectors."):
            sources.update(loads(zlib.decompress(shipped)))
            shipped = b""
        if name not in sources:
            return None
        return ModuleSpec(name, cls, is_package=sources[name][0])  # what importlib.util.spec_from_loader gives

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        filename = "<fleetscope>/{}.py".format(module.__name__.replace(".", "/"))
        exec(compile(sources[module.__name__][1], filename, "exec"), module.__dict__)


def on_alarm(signum, frame):
    answer({"failed": True, "timed_out": True,
            "msg": "collector timed out after {} s on the host".format(args["timeout"])}, 1)


sys.meta_path.insert(0, Bundled)
if args.get("timeout", 0) > 0:
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args["timeout"])
from fleetscope_collectors import collect  # noqa: E402

document = collect(top_n=args["top_n"], accounting_since=args.get("accounting_since") or None,
                   only=args.get("only"))
signal.alarm(0)
answer({"changed": False, "document": document})
