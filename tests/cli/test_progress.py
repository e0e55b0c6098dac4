"""The progress line while collecting: on a terminal only, hosts done / total and the failures."""

from __future__ import annotations

import io

from fleetscope.collect import Progress, classify, host_result


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_shows_done_total_and_failures_on_a_terminal():
    out = Tty()
    bar = Progress(5, stream=out)
    bar.update({"pending": 3, "ok": 1, "unreachable": 1, "failed": 0, "timeout": 0})
    bar.close()
    assert "collect: 2/5 hosts, 1 unreachable" in out.getvalue() and out.getvalue().endswith("\n")


def test_progress_is_silent_under_cron():
    out = io.StringIO()  # not a terminal
    bar = Progress(5, stream=out)
    bar.update({"ok": 5, "unreachable": 0, "failed": 0, "timeout": 0})
    bar.close()
    assert out.getvalue() == ""


def test_events_are_classified_with_their_message():
    assert classify("runner_on_unreachable", {"msg": "ssh: connect to host x port 22: Connection refused"}) == (
        "unreachable", "ssh: connect to host x port 22: Connection refused")
    # one failure, one message: where the pipe to ssh broke first and ssh then said why, as where it failed first
    refused = "ssh: connect to host 127.0.0.9 port 2222: Connection refused"
    assert classify("runner_on_unreachable", {"msg": f'Task failed: Data could not be sent to remote host '
                                                     f'"127.0.0.9". Make sure this host can be reached over ssh: '
                                                     f'{refused}'}) == (
        "unreachable", f"Task failed: Failed to connect to the host via ssh: {refused}")
    said_nothing = ('Data could not be sent to remote host "h". Make sure this host can be reached over ssh: '
                    '[Errno 32] Broken pipe')  # ssh's reason is not known: kept as Ansible said it
    assert classify("runner_on_unreachable", {"msg": said_nothing}) == ("unreachable", said_nothing)
    assert classify("runner_on_ok", {"document": {"schema_version": 1}}) == ("ok", "")
    assert classify("runner_on_ok", {}) == ("failed", "the module returned no document")
    assert classify("runner_on_failed", {"msg": "collector timed out after 30 s on the host", "timed_out": True})[0] \
        == "timeout"
    status, message = classify("runner_on_failed", {"msg": "MODULE FAILURE", "module_stderr": "boom\nValueError: x"})
    assert status == "failed" and message == "MODULE FAILURE: ValueError: x"


def test_a_failed_hosts_message_quotes_a_bounded_part_of_its_output():
    """A host that prints a long line of junk (2,000 characters in a review) gave a message of that length in
    the run's summary and host_status; the message quotes 300 characters of it."""
    junk = "x" * 5000
    status, message = classify("runner_on_failed", {"msg": "the collector failed", "module_stdout": junk})
    assert status == "failed" and message == "the collector failed: " + "x" * 300 + "…"


def test_a_task_timeout_said_only_in_its_message_is_a_timeout():
    """Ansible before the `timedout` result key (ansible-core 2.19 sets it) said a task's timeout only in its
    message: such a host is `timeout` (it hung), not `failed` (it broke)."""
    msg = "The command action failed to execute in the expected time frame (20) and was terminated"
    assert classify("runner_on_failed", {"msg": msg}) == ("timeout", msg)


def event(name: str, action: str, host: str = "gpu01", res: dict | None = None) -> dict:
    return {"event": name, "event_data": {"task_action": action, "host": host, "res": res or {}}}


def test_only_the_collect_tasks_ok_is_a_hosts_answer():
    """A playbook may add tasks of its own (a debug line): their ok is no answer (it has no document, and would
    fail a host whose collect task has not run yet), while a failure or unreachable at any task is the host's
    result (the collect task will not run after it)."""
    document = {"document": {"schema_version": 1}}
    assert host_result(event("runner_on_ok", "ansible.builtin.debug", res={"msg": "hello"})) is None
    assert host_result(event("runner_on_ok", "fleetscope_collect", res=document)) == ("gpu01", "runner_on_ok", document)
    assert host_result(event("runner_on_failed", "ansible.builtin.debug", res={"msg": "x"})) == (
        "gpu01", "runner_on_failed", {"msg": "x"})
    assert host_result(event("runner_on_unreachable", "ansible.builtin.debug")) == (
        "gpu01", "runner_on_unreachable", {})
    assert host_result(event("runner_on_start", "fleetscope_collect")) is None
    # admin's answers come from its own module: collect's is no answer there
    assert host_result(event("runner_on_ok", "fleetscope_collect"), "fleetscope_admin") is None
