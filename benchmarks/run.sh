#!/usr/bin/env bash
# Run every benchmark script benchmarks/bench_*.py in its own virtual environment
# benchmarks/.venv-bench (made on first use; no system site-packages).  That venv
# holds the comparison tools (einsteinpy; best-effort ogrepy and gravipy) beside an
# editable lnegeom, so they never become requirements of lnegeom itself.
#
#   bash benchmarks/run.sh                     # all benchmarks
#   bash benchmarks/run.sh kerr                # only bench_kerr.py (names without bench_ / .py)
#   bash benchmarks/run.sh einsteinpy symbolic # bench_einsteinpy.py, then bench_symbolic.py
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
# optional peers of bench_symbolic.py, best-effort and tried once per venv: a failed
# install does not stop the benchmarks (the scripts detect which peers import);
# delete $venv/.peers-tried to try again
newer_python() {  # a Python >= 3.12 (newest first), for OGRePy; prints its path
    local c
    for c in python3.14 python3.13 python3.12; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
            command -v "$c"; return 0
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for c in $(ls -d "$(pyenv root)"/versions/3.1[2-9]* 2>/dev/null | sort -V -r); do
            if [ -x "$c/bin/python3" ] && "$c/bin/python3" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
                echo "$c/bin/python3"; return 0
            fi
        done
    fi
    return 1
}
if [ ! -e "$venv/.peers-tried" ]; then
    "$venv/bin/pip" install -q gravipy || echo "!! gravipy did not install; benchmarks go on without it"
    # OGRePy needs Python >= 3.12 (OGRePy 2 needs 3.13); where this venv's Python is older it
    # gets a venv of its own, $venv/peer-ogrepy (sympy and OGRePy only, no torch, no lnegeom;
    # the same sympy release as here), which bench_symbolic.py finds and uses for it
    if ! "$venv/bin/pip" install -q ogrepy 2>/dev/null; then
        sympy_ver="$("$py" -c 'import sympy; print(sympy.__version__)')"
        if newer="$(newer_python)"; then
            echo "== OGRePy needs Python >= 3.12: making $venv/peer-ogrepy with $newer"
            "$newer" -m venv "$venv/peer-ogrepy" \
                && { "$venv/peer-ogrepy/bin/pip" install -q ogrepy "sympy==$sympy_ver" \
                     || "$venv/peer-ogrepy/bin/pip" install -q ogrepy; } \
                || echo "!! ogrepy did not install; benchmarks go on without it"
        else
            echo "!! ogrepy did not install (it needs Python >= 3.12, none found); benchmarks go on without it"
        fi
    fi
    touch "$venv/.peers-tried"
fi

if [ "${1:-}" = "--against" ]; then
    # before/after: bash benchmarks/run.sh --against REV [--rounds k] [--args "..."] flow optim
    cd "$root" && exec "$py" "$here/compare.py" "$@"
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
