"""Regenerate docs/results.md: tune the recipes that need one on a validation split, run every
method on every setting, and write the page with `rfdnn report`.

    python tools/results_pipeline.py [--runs runs] [--seeds 10] [--tune-seeds 3] [--jobs 2] [--only mnist1d-mlp-1w]

Every stage is a `rfdnn compare` with `--resume`: an interrupted pipeline continues where it
stopped when started again (finished runs are kept, interrupted ones resume from their checkpoints).

Fairness.  Four methods get a recipe of their own, each chosen from the same budget of four
candidates by the mean accuracy on a validation part (20 % of the training set, held out; the
test set is never looked at while tuning), with `--tune-seeds` seeds per candidate:

* `stochastic_binary`: the noise scale s;
* `mirror_tanh`: the initial β;
* `bop`: the flip threshold;
* `rfdnn`: τ (through target_s), α and ε (through eps_factor) — the same budget, so the comparison
  is fair both ways.

Every other method runs with its published defaults.  The final runs keep the methods' names and
carry the winners' options (`rfdnn compare --recipes`, recorded in each run.json and stated on the
page); `runs/tuning.json` holds every candidate's validation accuracy.  The 3-pass translations
(`shifts="forward"`) run as an ablation of RF-DNN's recipe.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rfdnn_bridge.experiments.report import load_runs, summarize  # noqa: E402
from rfdnn_bridge.experiments.train import METHODS  # noqa: E402

#: the candidates of each tuned method (options): the same budget (4) for each, RF-DNN included
CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "stochastic_binary": [dict(s=0.03), dict(s=0.1), dict(s=0.3), dict(s=1.0)],
    "mirror_tanh": [dict(beta=1.0), dict(beta=3.0), dict(beta=10.0), dict(beta=30.0)],
    "bop": [dict(threshold=1e-8), dict(threshold=1e-6), dict(threshold=1e-5), dict(threshold=1e-4)],
    "rfdnn": [dict(), dict(target_s=0.25), dict(alpha=1.0), dict(eps_factor=2.0)],
}


def variant(base: str, options: dict[str, Any]) -> str:
    """The method name of a candidate: ``base[k=v;…]`` (``base`` itself without options)."""
    return base + ("[" + ";".join(f"{k}={v}" for k, v in options.items()) + "]" if options else "")

#: name → (dataset, model, activations, epochs, extra compare options); the page's sections
SETTINGS: dict[str, tuple[str, str, str, int, list[str]]] = {
    "mnist1d-mlp-1w": ("mnist1d", "mlp", "", 20, []),
    "mnist1d-mlp-1w1a": ("mnist1d", "mlp", "clipped", 20, []),
    "mnist1d-cnn-1w": ("mnist1d", "cnn", "", 20, []),
    "mnist1d-cnn-1w1a": ("mnist1d", "cnn", "clipped", 20, []),
    "digits-cnn-1w": ("digits", "cnn", "", 15, ["--vary-split"]),
}
TITLES = {
    "mnist1d-mlp-1w": "MNIST-1D (canonical), MLP, 1-bit weights",
    "mnist1d-mlp-1w1a": "MNIST-1D (canonical), MLP, 1-bit weights and activations",
    "mnist1d-cnn-1w": "MNIST-1D (canonical), 1-D CNN, 1-bit weights",
    "mnist1d-cnn-1w1a": "MNIST-1D (canonical), 1-D CNN, 1-bit weights and activations",
    "digits-cnn-1w": "Digits, CNN, 1-bit weights",
}
#: the 3-pass translations, measured as an ablation of RF-DNN's winner
ABLATION = "shifts=forward"


def compare(out: Path, methods: list[str], setting: tuple, seeds: int, jobs: int, extra: list[str],
            reference: str) -> None:
    dataset, model, activations, epochs, opts = setting
    cmd = [sys.executable, "-m", "rfdnn_bridge", "compare", "--dataset", dataset, "--model", model,
           "--epochs", str(epochs), "--methods", ",".join(methods), "--seeds", str(seeds), "--out", str(out),
           "--jobs", str(jobs), "--threads", "1", "--resume", "--no-progress", "--device", "cpu",
           "--reference", reference, *opts, *extra]
    if activations:
        cmd += ["--activations", activations]
    print("$", " ".join(cmd), flush=True)
    rc = subprocess.run(cmd, cwd=ROOT).returncode
    if rc != 0:
        raise SystemExit(f"rfdnn compare exited with {rc}; run the pipeline again to resume")


def winner(runs: list[dict[str, Any]], base: str) -> tuple[dict[str, Any], dict[str, float]]:
    """The candidate of ``base`` with the highest mean validation accuracy (ties: the earlier one)."""
    names = [variant(base, o) for o in CANDIDATES[base]]
    means = {r["method"]: r["mean"] for r in summarize(runs, reference=names[0]) if r["method"] in names}
    missing = set(names) - set(means)
    if missing:
        raise SystemExit(f"tuning runs missing for {sorted(missing)}; run the pipeline again")
    best = max(range(len(names)), key=lambda i: (means[names[i]], -i))
    return CANDIDATES[base][best], means


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=ROOT / "runs")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--tune-seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default=None, help="comma-separated settings (default: all)")
    ap.add_argument("--page", type=Path, default=ROOT / "docs" / "results.md")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(SETTINGS)
    tuning: dict[str, Any] = {}
    timing: dict[str, float] = {}
    for name in names:
        setting = SETTINGS[name]
        t0 = time.perf_counter()
        tune_dir = args.runs / f"{name}-tune"
        compare(tune_dir, [variant(b, o) for b, opts in CANDIDATES.items() for o in opts], setting, args.tune_seeds,
                args.jobs, ["--validation", "0.2"], reference="rfdnn")
        runs = load_runs(tune_dir)
        chosen, scores = {}, {}
        for base in CANDIDATES:
            chosen[base], scores[base] = winner(runs, base)
        tuning[name] = dict(chosen=chosen, validation_mean=scores)
        recipes = {b: o for b, o in chosen.items() if o}
        if chosen["rfdnn"]:
            recipes[f"rfdnn[{ABLATION}]"] = chosen["rfdnn"]
        recipe_file = args.runs / f"{name}-recipes.json"
        recipe_file.write_text(json.dumps(recipes, indent=1))
        compare(args.runs / name, list(METHODS) + [f"rfdnn[{ABLATION}]"], setting, args.seeds, args.jobs,
                ["--recipes", str(recipe_file)], reference="rfdnn")
        timing[name] = time.perf_counter() - t0
        print(f"== {name}: recipes {chosen}; {timing[name]:.0f} s", flush=True)
    (args.runs / "tuning.json").write_text(json.dumps(dict(tuning=tuning, seconds=timing), indent=1))
    sections = [f"{TITLES[n]}={args.runs / n}" for n in names]
    cmd = [sys.executable, "-m", "rfdnn_bridge", "report", *sections, "--out", str(args.page)]
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


if __name__ == "__main__":
    raise SystemExit(main())
