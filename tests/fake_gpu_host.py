"""A loopback sshd host that looks like the fake two-H100 host (tests/collectors/fake_pynvml.py).

Like the fault hosts in tests/faults.py, it is a python3 "interpreter" for `ansible_python_interpreter=`:
a shell script that starts the host's real python3 with a sitecustomize.py. That one changes a single
thing: when the shipped collector's `gpus` module is imported (by the collect or the admin module), its
`driver_present()` answers yes and its `load_pynvml()` returns the fake, whose settings (compute mode,
power limit, whether the caller may change them) live in a JSON state file, so that one run sees what
an earlier run changed and the test reads it. Nothing in fleetscope is patched.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pynvml

FAKE = Path(__file__).resolve().parent / "collectors" / "fake_pynvml.py"
STATE_ENV = "FLEETSCOPE_FAKE_NVML_STATE"

SITE = """
    import importlib.abc
    import os
    import sys

    TARGET = "ansible.module_utils.fleetscope_collectors.gpus"


    def load_fake():
        import fake_pynvml

        return fake_pynvml.make(os.getpid(), state_file=os.environ["FLEETSCOPE_FAKE_NVML_STATE"])


    class PatchGpus(importlib.abc.Loader):
        def __init__(self, inner):
            self.inner = inner

        def create_module(self, spec):
            return self.inner.create_module(spec)

        def exec_module(self, module):
            self.inner.exec_module(module)
            module.driver_present = lambda: True
            module.load_pynvml = load_fake


    class FindGpus(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname != TARGET:
                return None
            for finder in sys.meta_path:
                if finder is not self and hasattr(finder, "find_spec"):
                    spec = finder.find_spec(fullname, path, target)
                    if spec is not None:
                        spec.loader = PatchGpus(spec.loader)
                        return spec
            return None


    sys.meta_path.insert(0, FindGpus())
"""


class FakeGpuHost:
    """root/python3 (the interpreter) and root/state.json (the fake's settings)."""

    def __init__(self, root: Path, python: str, privileged: bool = True):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file = self.root / "state.json"
        (self.root / "sitecustomize.py").write_text(textwrap.dedent(SITE))
        for name, source in (("fake_pynvml.py", FAKE), ("pynvml.py", Path(pynvml.__file__).resolve())):
            link = self.root / name
            if not link.exists():
                link.symlink_to(source)  # the fake builds on the real pynvml's constants and errors
        self.python = self.root / "python3"
        self.python.write_text(f'#!/bin/sh\n{STATE_ENV}="{self.state_file}" PYTHONPATH="{self.root}" '
                               f'exec "{python}" "$@"\n')
        self.python.chmod(0o755)
        self.reset(privileged)

    def reset(self, privileged: bool = True) -> None:
        """A freshly booted host: compute mode default, 700 W; `privileged`: whether NVML lets it set them."""
        state = self._fake().default_state(privileged)
        self.state_file.write_text(json.dumps(state))

    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def gpu(self, index: int) -> dict:
        return self.state()["gpus"][str(index)]

    def set_privileged(self, privileged: bool) -> None:
        state = self.state()
        state["privileged"] = privileged
        self.state_file.write_text(json.dumps(state))

    @staticmethod
    def _fake():
        import importlib.util

        spec = importlib.util.spec_from_file_location("fleetscope_fake_pynvml_host", FAKE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

