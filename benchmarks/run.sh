#!/usr/bin/env bash
# Run every benchmark script benchmarks/bench_*.py in its own virtual environment
# benchmarks/.venv-bench (made on first use; no system site-packages).  That venv
# holds the comparison tools (einsteinpy) beside an editable lnegeom, so they never
# become requirements of lnegeom itself.
#
#   bash benchmarks/run.sh            # all benchmarks
#   bash benchmarks/run.sh kerr       # only bench_kerr.py (names without bench_ / .py)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$here/.venv-bench"
py="$venv/bin/python"

if [ ! -x "$py" ] || ! "$py" -c "import einsteinpy, lnegeom, torch" 2>/dev/null; then
    echo "== making $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    # torch first, pinned: 2.13.0 comes from local disk (no CUDA download)
    "$venv/bin/pip" install -q torch==2.13.0
    "$venv/bin/pip" install -q einsteinpy -e "$root"
fi

status=0
if [ "$#" -gt 0 ]; then
    scripts=()
    for n in "$@"; do scripts+=("$here/bench_${n}.py"); done
else
    scripts=("$here"/bench_*.py)
fi
for script in "${scripts[@]}"; do
    echo
    echo "== $(basename "$script")"
    (cd "$root" && "$py" "$script") || { echo "!! $(basename "$script") exited non-zero"; status=1; }
done
exit $status
