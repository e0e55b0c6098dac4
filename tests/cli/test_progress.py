"""The progress line while collecting: on a terminal only, hosts done / total and the failures."""

from __future__ import annotations

import io

from fleetscope.collect import Progress, classify


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
