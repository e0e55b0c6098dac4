# fleetscope's collector loader. The fleetscope_collect action runs `python3 -c STUB` on a host (STUB, in
# fleetscope/stage.py, reads this file from stdin and runs it), then the rest of stdin is: one line with the
# byte length of the JSON arguments, the arguments, then the collector package as zlib-compressed JSON
# {module name: [is package, source]}.
# The package is imported from memory: nothing is written to the host, nothing stays behind. The answer is
# one JSON object on stdout, shaped like an Ansible module's result.
import json
import os
import signal
import sys
import zlib


def answer(result, code=0):
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    os._exit(code)


if sys.version_info < (3, 8):  # noqa: UP036 - the host's python, not ours
    answer({"failed": True, "msg": "fleetscope's collector needs a minimum of Python version 3.8 on the host, "
            f"found {sys.version.split()[0]}"}, 1)

data = sys.stdin.buffer.read()
head, _, rest = data.partition(b"\n")
args = json.loads(rest[:int(head)])
sources = json.loads(zlib.decompress(rest[int(head):]))


class Bundled:
    """Finds and loads the shipped modules from `sources`, ahead of anything installed on the host."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name not in sources:
            return None
        from importlib.util import spec_from_loader

        return spec_from_loader(name, cls, is_package=sources[name][0])

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
