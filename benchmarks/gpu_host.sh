#!/usr/bin/env bash
# The collector on a machine with NVIDIA GPUs: what it costs that host, and its documents, with the GPUs
# idle and with one busy. No Ansible, sshd or DuckDB needed; python3 with nvidia-ml-py is (PyTorch, if it
# is there, makes GPU 0 busy). From the repository root:
#
#     bash benchmarks/gpu_host.sh OUTDIR [HOST_PYTHON]
#
# HOST_PYTHON is the interpreter measured as the host's (default /usr/bin/python3, what a GPU server runs
# the collector with); python3 builds the bundle and runs the benchmark; REPEAT (default 31) is the
# number of runs of each contender with the GPUs idle (half that while one is busy). Writes to OUTDIR:
# machine.txt (nvidia-smi, versions), nvml-init.txt (NVML's start, cold and with the GPU held),
# nvml-calls.json (benchmarks/nvml_calls.py: each NVML call the collector makes), document-idle.json,
# document-busy.json, host-cost-idle.json (with each subsystem alone) and host-cost-busy.json
# (benchmarks/collect_bench.py --only-host), and shipped-idle/ and shipped-busy/ (benchmarks/shipped_document.py:
# the documents of the bundle as shipped, pruned pynvml and not, compared). The results of the last run are in
# docs/benchmarks.md.
set -u
out=${1:?usage: bash benchmarks/gpu_host.sh OUTDIR [HOST_PYTHON]}
host_python=${2:-/usr/bin/python3}
repeat=${REPEAT:-31}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

{
    nvidia-smi
    nvidia-smi -q | head -60
    python3 --version
    python3 -c 'import pynvml, importlib.metadata as m; print("nvidia-ml-py", m.version("nvidia-ml-py"), pynvml.__file__)'
    "$host_python" --version
    "$host_python" -c 'import psutil; print("host psutil", psutil.__version__)' || echo "host python has no psutil"
    nproc
} >"$out/machine.txt" 2>&1

# NVML's start in a new process, as each collection pays it: wall and CPU of nvmlInit, then of reading
# every GPU's name and memory. Run while no process holds a GPU, and again while one does (below).
nvml_init() {
    for _ in 1 2 3 4 5; do
        python3 - <<'EOF'
import os, resource, time
import pynvml
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t0, c0 = time.perf_counter(), cpu()
pynvml.nvmlInit()
t1, c1 = time.perf_counter(), cpu()
for i in range(pynvml.nvmlDeviceGetCount()):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    pynvml.nvmlDeviceGetName(h), pynvml.nvmlDeviceGetMemoryInfo(h)
t2, c2 = time.perf_counter(), cpu()
pynvml.nvmlShutdown()
print(f"{os.environ['NVML_LABEL']}: nvmlInit {1000 * (t1 - t0):.1f} ms wall {1000 * (c1 - c0):.1f} ms CPU; "
      f"names and memory {1000 * (t2 - t1):.1f} ms wall {1000 * (c2 - c1):.1f} ms CPU")
EOF
    done
}

NVML_LABEL=idle nvml_init >"$out/nvml-init.txt" 2>&1 || true
python3 -m collectors --pretty >"$out/document-idle.json"
timeout 120 python3 -m benchmarks.shipped_document "$out/shipped-idle" "$host_python"
timeout 120 python3 -m benchmarks.nvml_calls --sessions 10 && cp benchmarks/out/nvml-calls.json "$out/"
timeout 300 python3 -m benchmarks.collect_bench --only-host --subsystems --host-repeat "$repeat" --other-python none \
    --python "$host_python" && cp benchmarks/out/host-cost.json "$out/host-cost-idle.json"

# GPU 0 busy: a matrix product in a loop, holding some memory, as a training job would.
busy=
if python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    python3 -c '
import time, torch
a = torch.randn(8192, 8192, device="cuda")
end = time.time() + 240
while time.time() < end:
    b = a @ a
    torch.cuda.synchronize()
' &
    busy=$!
    sleep 10
    NVML_LABEL=busy nvml_init >>"$out/nvml-init.txt" 2>&1 || true
    python3 -m collectors --pretty >"$out/document-busy.json"
    timeout 120 python3 -m benchmarks.shipped_document "$out/shipped-busy" "$host_python"
    timeout 200 python3 -m benchmarks.collect_bench --only-host --host-repeat $(((repeat + 1) / 2)) --other-python none \
        --python "$host_python" &&
        cp benchmarks/out/host-cost.json "$out/host-cost-busy.json"
    kill "$busy"
    wait "$busy" 2>/dev/null
else
    echo "no PyTorch with CUDA here: no busy GPU" >>"$out/machine.txt"
fi
cat "$out/nvml-init.txt"
