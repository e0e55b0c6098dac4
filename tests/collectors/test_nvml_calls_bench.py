"""benchmarks/nvml_calls.py times the collector's own NVML reads (here through the fake two-H100 NVML)."""

import json

import benchmarks
from benchmarks import nvml_calls


def test_every_read_of_both_gpus_is_timed_in_each_session(fake_nvml, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(benchmarks, "OUT", tmp_path)
    out = nvml_calls.main(["--sessions", "3"])
    assert (out["sessions"], out["gpus"]) == (3, 2)
    assert fake_nvml.host.inits == fake_nvml.host.shutdowns == 3
    calls = out["calls"]
    for name in ("nvmlSystemGetDriverVersion", "nvmlDeviceGetUtilizationRates", "nvmlDeviceGetSamples",
                 "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetFieldValues", "nvmlDeviceGetAccountingPids"):
        # measured, in seconds: Linux's process CPU clock counts nanoseconds, so even a fake call costs more than
        # 0 s of CPU, and none of them comes near half a second
        assert 0 < calls[name]["first_cpu_s"] < 0.5 and calls[name]["first_wall_s"] > 0, name
    assert calls["nvmlDeviceGetHandleByIndex"]["count"] == 2  # once per GPU and pass
    assert calls["nvmlDeviceGetTotalEnergyConsumption"]["count"] == 2
    assert "nvmlDeviceGetFanSpeed" in calls  # NotSupported on both: a call the collector makes all the same
    assert out["fields"] == len(nvml_calls.FIELDS) and out["field_values_batch"][0] > 0
    assert json.loads((tmp_path / "nvml-calls.json").read_text()) == out
    printed = capsys.readouterr().out
    assert printed.startswith("2 GPU(s), 3 sessions; nvmlInit") and "nvmlDeviceGetTotalEnergyConsumption" in printed
