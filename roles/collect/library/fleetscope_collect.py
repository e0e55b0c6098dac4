#!/usr/bin/python
# fleetscope: the documentation of the fleetscope_collect action. The work is done by the action plugin
# (roles/collect/action_plugins/fleetscope_collect.py), which runs the collector on the host without
# AnsiballZ, like Ansible's own `raw` and `script`, whose module files are documentation only too.

DOCUMENTATION = r"""
---
module: fleetscope_collect
short_description: Collect GPU and system facts from a host as one fleetscope document
description:
  - Runs the fleetscope collector on the target host and returns its document (see docs/document.md).
  - Reads NVML (through the pynvml copy shipped with the module, or the host's own) and /proc or psutil.
  - A failing subsystem is reported in the document's C(errors) and never fails the task.
  - Needs no root and changes nothing on the host; writes no file there (the collector is sent on stdin).
  - Runs C(ansible_python_interpreter) (discovered when unset, and remembered with a fact cache; the
    interpreter is discovered again when the remembered one does not start), which must be Python 3.8 or
    newer.
  - Where the task leaves out C(top_n), C(timeout) or C(accounting_since), the variables C(collect_top_n),
    C(collect_host_timeout) and C(collect_accounting_since) give them (the collect role's defaults), so that
    the role's task holds no template for Ansible to compile on every host.
  - Where no task timeout applies (no C(timeout) keyword, no C(task_timeout) setting), the task is stopped
    at C(timeout) + 15 seconds, for a host that stops answering altogether, and reported as a task timeout
    is (C(timedout)). C(fleetscope collect) and C(fleetscope hosts check) turn C(task_timeout) off.
options:
  top_n:
    description: How many processes to report, the top N by CPU time plus the top N by resident memory.
    type: int
    default: 15
  timeout:
    description:
      - Seconds the collection may take. Past it the module stops itself and fails with C(timed_out=true),
        so nothing is left running on the host.
    type: int
    default: 30
  accounting_since:
    description: Leave out NVML accounting records of processes that ended before this UTC time (ISO 8601).
    type: str
    default: ""
  only:
    description: Collect only these subsystems (host, cpu, load, memory, disks, network, processes, gpus).
    type: list
    elements: str
  discover:
    description:
      - Discover the host's Python interpreter afresh even where Ansible's fact cache remembers one from an
        earlier run (when C(ansible_python_interpreter) is unset). The new one is remembered in its place.
    type: bool
    default: false
author:
  - fleetscope
"""

EXAMPLES = r"""
- name: Collect GPU and system facts
  fleetscope_collect:
    top_n: 15
    timeout: 30
  register: fleet
"""

RETURN = r"""
document:
  description: The host document, schema_version 1 (docs/document.md).
  returned: success
  type: dict
timed_out:
  description: True when the collection ran past C(timeout).
  returned: failure
  type: bool
python_magic:
  description: The magic number of the host Python's bytecode, in hex; the next run sends only the bytecode
    compiled for it (none when the controller has no interpreter of that version).
  returned: success
  type: str
python_implementation:
  description: The host Python's implementation (C(sys.implementation.name), e.g. cpython, pypy); with its
    version it names the controller's interpreter that compiles bytecode for it (collect.bytecode_pythons).
  returned: success
  type: str
"""
