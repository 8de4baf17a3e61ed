#!/usr/bin/env bash
# The GPU check: on a machine with CUDA, the gpu-marked tests and the optimizer, estimator,
# flow and throughput benchmarks with --device "$device", in under 8 minutes; each benchmark prints
# its ratios (measured side by side in one run).  Without a CUDA device it says so and exits 0.
#
#   bash benchmarks/gpu.sh              # with the project's .venv (or $PYTHON, or python3)
#   PYTHON=/path/to/python bash benchmarks/gpu.sh
#   DEVICE=cpu bash benchmarks/gpu.sh   # the same steps on the CPU: checks the script itself
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
py="${PYTHON:-}"
if [ -z "$py" ]; then
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
device="${DEVICE:-cuda}"
if [ "${device#cuda}" != "$device" ] && ! "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)' 2>/dev/null; then
    echo "gpu.sh: no CUDA device (torch.cuda.is_available() is False): skipped"
    exit 0
fi
"$py" -c 'import sys, torch; d = sys.argv[1]; print("gpu.sh on", torch.cuda.get_device_name(d) if d.startswith("cuda") else d, "torch", torch.__version__)' "$device"
status=0
step() {  # step SECONDS TITLE COMMAND...: run with a time limit, remember a failure, go on
    local limit="$1" title="$2"; shift 2
    echo; echo "== $title (limit ${limit}s)"
    local t0=$SECONDS
    timeout "$limit" "$@"; local rc=$?
    echo "-- $title: exit $rc in $((SECONDS - t0)) s"
    [ "$rc" -eq 0 ] || status=1
}
step 150 "gpu-marked tests" "$py" -m pytest -q -m gpu -p no:cacheprovider tests
step 90 "optimizer (bench_optim)" "$py" benchmarks/bench_optim.py --device "$device" --quick
step 60 "estimators (bench_estimators)" "$py" benchmarks/bench_estimators.py --device "$device" --repeats 5 --bare-log2 22
step 90 "flow (bench_flow)" "$py" benchmarks/bench_flow.py --device "$device" --quick
step 60 "throughput (bench_throughput)" "$py" benchmarks/bench_throughput.py --device "$device" --quick
echo; echo "gpu.sh: $([ $status -eq 0 ] && echo 'all steps passed' || echo 'some step failed (see above)')"
exit $status
