#!/usr/bin/python
# fleetscope: the Ansible module that runs the collector on a host.
# It is thin on purpose: parse the arguments, call the collector, return its document.
# The collector package travels with this module as ansible.module_utils.fleetscope_collectors
# (staged by `fleetscope collect`), so the host needs nothing but python3.

DOCUMENTATION = r"""
---
module: fleetscope_collect
short_description: Collect GPU and system facts from a host as one fleetscope document
description:
  - Runs the fleetscope collector on the target host and returns its document (see docs/document.md).
  - Reads NVML (through the pynvml copy shipped with the module, or the host's own) and /proc or psutil.
  - A failing subsystem is reported in the document's C(errors) and never fails the task.
  - Needs no root and changes nothing on the host.
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
"""

import signal  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.fleetscope_collectors import collect  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec=dict(
            top_n=dict(type="int", default=15),
            timeout=dict(type="int", default=30),
            accounting_since=dict(type="str", default=""),
            only=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    timeout = module.params["timeout"]

    def on_alarm(signum, frame):
        module.fail_json(msg=f"collector timed out after {timeout} s on the host", timed_out=True)

    if timeout > 0:
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(timeout)
    document = collect(
        top_n=module.params["top_n"],
        accounting_since=module.params["accounting_since"] or None,
        only=module.params["only"],
    )
    signal.alarm(0)
    module.exit_json(changed=False, document=document)


if __name__ == "__main__":
    main()
