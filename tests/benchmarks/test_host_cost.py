"""benchmarks/collect_bench.py's host cost runs what the action runs on a host, and says what it measured."""

import json

import pytest

from benchmarks import collect_bench


@pytest.mark.slow
def test_host_cost_measures_every_contender_once(tmp_path, capsys):
    out = collect_bench.host_cost(1, tmp_path, subsystems=True)
    for name in ("bare", "module", "module_compiling", "pynvml_import", "pynvml_import_unlightened",
                 "pynvml_import_compiling", "collector"):
        assert out[f"{name}_cpu_s"] > 0 and out[f"{name}_rss_bytes"] > 0 and out[f"{name}_wall_s"] > 0, name
    for name in ("none", "host", "cpu", "load", "memory", "disks", "network", "processes", "gpus"):
        assert out[f"only_{name}_cpu_s"] > 0, name
    assert out["python"] == collect_bench.PYTHON and out["ratio_cpu"] == out["module_cpu_s"] / out["bare_cpu_s"]
    assert ("module_unlightened_cpu_s" in out) == out["nvidia_driver"]  # a GPU read only where there is a driver
    collect_bench.print_host_cost(out)
    printed = capsys.readouterr().out
    assert f"host cost ({collect_bench.PYTHON}): fleetscope_collect" in printed and "nvidia-ml-py's as it is" in printed
    assert "one subsystem alone (none: the bootstrap and the package): none " in printed and " gpus " in printed
    json.dumps(out)  # what --only-host writes


def test_the_pynvml_probe_imports_pynvml_and_collects_nothing(tmp_path, monkeypatch):
    """What "importing the shipped pynvml" measures: the bootstrap up to the collection, then the import.
    After the bootstrap's last line changed, the probe ran a whole collection instead, and the benchmark
    reported that as pynvml's import."""
    import subprocess

    from fleetscope import stage
    from fleetscope.stage import STUB, bundle_of, collector_sources, payload, probe_bootstrap

    probe = probe_bootstrap(
        "from fleetscope_collectors import gpus\nanswer({'pynvml': gpus.load_pynvml().__name__})\n")
    sent = payload({"top_n": 15, "timeout": 30}, bundle_of(collector_sources()), probe)
    proc = subprocess.run([collect_bench.PYTHON, "-c", STUB], input=sent, capture_output=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"pynvml": "fleetscope_collectors.pynvml_shipped"}
    monkeypatch.setattr(stage, "COLLECTION_STARTS", "a line the bootstrap does not have")
    with pytest.raises(RuntimeError, match="no longer has the line"):
        probe_bootstrap("")
