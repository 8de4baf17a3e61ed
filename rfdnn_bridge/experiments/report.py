r"""Summaries of a comparison: mean ± std per method, paired differences, spread, plots.

Input: the ``run.json`` of every finished (method, seed) run (:mod:`rfdnn_bridge.experiments.train`).
Statistics, all computed from the runs (nothing typed):

* per method: mean ± sample std (ddof = 1) of the final test accuracy over seeds;
* paired difference to a reference method (default ``rfdnn``) over the seeds
  both have: mean difference and its 95 % t-interval, mean ± t_{0.975, k−1} s/√k
  (the runs are paired: same seed ⇒ same initial weights, same batches, same split);
* spread: the ratio std(method)/std(reference) with a 95 % percentile bootstrap
  interval (resampling seeds, paired, ``n_boot`` resamples, fixed seed).  With
  few seeds the interval is wide: 5 seeds cannot show a spread ratio below ~10
  to be significant, hence the ≥ 20 seeds of the spread claim.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from scipy import stats

from .train import METHODS, NOT_SETTING

__all__ = [
    "load_runs", "summarize", "paired_difference", "std_ratio", "summary_table", "write_summary", "plot_runs",
    "verdict", "ablation", "overview", "write_results",
]


#: config keys that may differ between the runs of one comparison (the rest is its setting): the
#: method, the seed and its split, and what does not change a run's result (train.NOT_SETTING)
PER_RUN_KEYS = frozenset({"method", "seed", "split_seed", "method_options", *NOT_SETTING})


def load_runs(root: Path) -> list[dict[str, Any]]:
    """Every finished ``run.json`` under ``root`` (interrupted runs are skipped).

    A ``run.json`` that cannot be read is skipped with a warning naming it (the others are
    still summarised).  Runs of different settings (any config key but :data:`PER_RUN_KEYS`,
    or different train/test splits for one seed) are refused with a ``ValueError`` naming the
    differing keys: a summary must never mix them.
    """
    found: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(Path(root).rglob("run.json")):
        try:
            run = json.loads(path.read_text())
            finished = run.get("status") == "finished" and bool(run["test_accuracy"])
            if not {"method", "seed"} <= set(run["config"]):
                raise KeyError("config.method and config.seed")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            warnings.warn(f"{path}: skipped, not a readable run.json ({type(err).__name__}: {err}); delete it and "
                          f"rerun that run", stacklevel=2)
            continue
        if finished:
            found.append((path, run))
    _check_one_setting(found, Path(root))
    return [run for _, run in found]


def _check_one_setting(found: Sequence[tuple[Path, dict[str, Any]]], root: Path) -> None:
    if not found:
        return
    first_path, first = found[0]
    setting = {k: v for k, v in first["config"].items() if k not in PER_RUN_KEYS}
    split_of_seed: dict[Any, tuple[Any, Path]] = {}
    for path, run in found:
        cfg = run["config"]
        keys = sorted(k for k in set(setting) | set(cfg) if k not in PER_RUN_KEYS and cfg.get(k) != setting.get(k))
        if keys:
            diff = ", ".join(f"{k}={setting.get(k)!r} vs {cfg.get(k)!r}" for k in keys)
            raise ValueError(f"runs under {root} have different settings ({diff}: {first_path} vs {path}); "
                             f"compare them in separate --out folders, or delete the stale runs")
        seen = split_of_seed.setdefault(cfg["seed"], (cfg.get("split_seed"), path))
        if seen[0] != cfg.get("split_seed"):
            raise ValueError(f"runs under {root} of seed {cfg['seed']} use different train/test splits "
                             f"(split_seed={seen[0]!r} in {seen[1]}, {cfg.get('split_seed')!r} in {path}); "
                             f"paired differences need one split per seed")


def _final(runs: Sequence[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """method → seed → final test accuracy."""
    out: dict[str, dict[int, float]] = {}
    for r in runs:
        out.setdefault(r["config"]["method"], {})[int(r["config"]["seed"])] = float(r["test_accuracy"][-1])
    return out


def paired_difference(a: dict[int, float], b: dict[int, float], level: float = 0.95) -> Optional[dict[str, float]]:
    """Mean of a − b over common seeds with its t-interval (``None`` with fewer than 2 common seeds)."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    d = np.array([a[s] - b[s] for s in seeds])
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1)) * sd / math.sqrt(len(d))
    if sd > 0:
        p = float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(len(d))), len(d) - 1))
    else:  # every seed gives the same difference
        p = 1.0 if mean == 0 else 0.0
    return dict(mean=mean, low=mean - half, high=mean + half, n=len(d), p=p)


def std_ratio(
    a: dict[int, float], b: dict[int, float], *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> Optional[dict[str, float]]:
    """std(a)/std(b) over common seeds with a paired percentile-bootstrap interval."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 3:
        return None
    x = np.array([a[s] for s in seeds])
    y = np.array([b[s] for s in seeds])
    sy = y.std(ddof=1)
    sx = x.std(ddof=1)
    ratio = float(sx / sy) if sy > 0 else (math.inf if sx > 0 else 1.0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    bx, by = x[idx].std(axis=1, ddof=1), y[idx].std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a resample with std(b) = 0 has ratio +inf, kept
        boots = np.where(by > 0, bx / np.where(by > 0, by, 1.0), np.where(bx > 0, np.inf, 1.0))
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")  # inf-safe
    # two-sided bootstrap p-value of "ratio = 1": twice the smaller tail beyond 1 (at least 1/n_boot)
    p = min(1.0, max(2.0 * min(float(np.mean(boots <= 1.0)), float(np.mean(boots >= 1.0))), 1.0 / n_boot))
    return dict(ratio=ratio, low=float(lo), high=float(hi), n=len(seeds), p=p)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (one family): the i-th smallest p becomes
    ``max_{j ≤ i} min(1, (m − j + 1) p_(j))``; rejecting where the adjusted p < α controls the
    family-wise error rate at α."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


#: significance level of the verdicts (family-wise, Holm over the comparisons with the reference)
ALPHA = 0.05


def summarize(runs: Sequence[dict[str, Any]], reference: str = "rfdnn") -> list[dict[str, Any]]:
    """One row per method: n, mean, std, and against ``reference``: paired difference and std ratio."""
    final = _final(runs)
    rows = []
    for method, by_seed in final.items():
        acc = np.array(list(by_seed.values()))
        row: dict[str, Any] = dict(method=method, n=len(acc), mean=float(acc.mean()),
                                   std=float(acc.std(ddof=1)) if len(acc) > 1 else math.nan)
        if reference in final and method != reference:
            row["diff"] = paired_difference(by_seed, final[reference])
            row["std_ratio"] = std_ratio(by_seed, final[reference])
        rows.append(row)
    for key in ("diff", "std_ratio"):  # one family per setting: every method against the reference
        tested = [r[key] for r in rows if r.get(key)]
        for entry, adjusted in zip(tested, holm([e["p"] for e in tested])):
            entry["p_holm"] = adjusted
    rows.sort(key=lambda r: -r["mean"])
    return rows


def _significant(entry: Optional[dict[str, float]], adjusted: bool = True) -> bool:
    """The comparison ``entry`` rejects equality: its Holm-adjusted (or raw) p is below ALPHA."""
    return bool(entry) and entry["p_holm" if adjusted else "p"] < ALPHA


def _better(r: dict[str, Any], adjusted: bool = True) -> bool:  # the reference beats method r
    return _significant(r.get("diff"), adjusted) and r["diff"]["mean"] < 0


def _worse(r: dict[str, Any], adjusted: bool = True) -> bool:
    return _significant(r.get("diff"), adjusted) and r["diff"]["mean"] > 0


def _smaller_spread(r: dict[str, Any], adjusted: bool = True) -> bool:  # the reference's std is smaller
    return _significant(r.get("std_ratio"), adjusted) and r["std_ratio"]["ratio"] > 1


def _larger_spread(r: dict[str, Any], adjusted: bool = True) -> bool:
    return _significant(r.get("std_ratio"), adjusted) and r["std_ratio"]["ratio"] < 1


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def summary_table(runs: Sequence[dict[str, Any]], reference: str = "rfdnn") -> str:
    """The markdown table of :func:`summarize` (accuracies in %, differences in percentage points)."""
    rows = summarize(runs, reference)
    lines = [f"| method | seeds | mean ± std (%) | {reference} − method: mean [95 % CI] (pp) | p | p Holm "
             f"| std / std({reference}) [95 % CI] | p | p Holm |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d, q = r.get("diff"), r.get("std_ratio")
        dtxt = ("| | " if d is None else
                f"{-100 * d['mean']:+.2f} [{-100 * d['high']:+.2f}, {-100 * d['low']:+.2f}] | {_p(d['p'])} | "
                f"{_p(d['p_holm'])}")
        qtxt = ("| | " if q is None else
                f"{q['ratio']:.2f} [{q['low']:.2f}, {q['high']:.2f}] | {_p(q['p'])} | {_p(q['p_holm'])}")
        lines.append(f"| {r['method']} | {r['n']} | {_pct(r['mean'])} ± {_pct(r['std'])} | {dtxt} | {qtxt} |")
    return "\n".join(lines) + "\n"


def _p(p: float) -> str:
    return "< 0.001" if p < 1e-3 else f"{p:.3f}"


def _setting(runs: Sequence[dict[str, Any]]) -> str:
    c = runs[0]["config"]
    splits = sorted({r["config"].get("split_seed", 0) for r in runs})
    split = f"split {splits[0]}" if len(splits) == 1 else f"{len(splits)} train/test splits (one per seed)"
    return (f"dataset `{c['dataset']}`, model `{c['model']}`, {c['epochs']} epochs, batch {c['batch_size']}, "
            f"lr {c['lr']}, momentum {c['momentum']}, activations `{c['activations'] or 'float'}`, {split}; "
            + (f"final accuracy on a validation part ({c['validation']:g} of the training set, held out) over seeds."
               if c.get("validation") else "final test accuracy over seeds.") + _recipes(runs))


def _recipes(runs: Sequence[dict[str, Any]]) -> str:
    """The methods run with options of their own (``--recipes``), as a sentence."""
    recipes: dict[str, str] = {}
    for r in runs:
        opts = r["config"].get("method_options") or {}
        if opts:
            recipes[r["config"]["method"]] = ", ".join(f"{k}={v}" for k, v in sorted(opts.items()))
    if not recipes:
        return ""
    return " Recipes of their own: " + "; ".join(f"`{m}`: {o}" for m, o in sorted(recipes.items())) + "."


def write_summary(runs: Sequence[dict[str, Any]], path: Path, *, reference: str = "rfdnn", title: str = "") -> str:
    """``summary.md``: the setting and :func:`summary_table`, returned as text too."""
    text = f"# {title or 'Comparison'}\n\n" + (_setting(runs) + "\n\n" if runs else "") + summary_table(runs, reference)
    Path(path).write_text(text)
    return text


#: a method "did not train" when its mean final test accuracy stays below this multiple of chance
UNTRAINED_FACTOR = 2.0
#: classes of each data set (chance = 1 / classes)
CLASSES = {"digits": 10, "mnist1d": 10, "cifar10": 10}


def _untrained_floor(runs: Sequence[dict[str, Any]]) -> float:
    """The accuracy below which a method "did not train" on the runs' data set (UNTRAINED_FACTOR × chance)."""
    return UNTRAINED_FACTOR / CLASSES.get(runs[0]["config"].get("dataset"), 10)


def verdict(runs: Sequence[dict[str, Any]], reference: str = "rfdnn") -> list[str]:
    """The paper's two claims judged on ``runs`` (docs/math.md §6): sentences computed from the intervals."""
    rows = {r["method"]: r for r in summarize(runs, reference)}
    if reference not in rows:
        return [f"no `{reference}` runs: nothing to judge"]
    others = [r for m, r in rows.items() if m != reference and r.get("diff")]
    better = [r["method"] for r in others if _better(r)]
    worse = [r["method"] for r in others if _worse(r)]
    tied = [r["method"] for r in others if r["method"] not in better and r["method"] not in worse]
    raw_better, raw_worse = sum(_better(r, False) for r in others), sum(_worse(r, False) for r in others)
    best = max(rows.values(), key=lambda r: r["mean"])
    n = rows[reference]["n"]
    out = [f"Claim 1 (higher mean accuracy): `{reference}` is significantly better than {len(better)} method(s) "
           f"({', '.join(better) or '–'}), indistinguishable from {len(tied)} ({', '.join(tied) or '–'}) and "
           f"significantly worse than {len(worse)} ({', '.join(worse) or '–'}) — paired t-tests over {n} seeds, "
           f"Holm-adjusted over the {len(others)} comparisons at {ALPHA:g} (unadjusted: better than {raw_better}, "
           f"worse than {raw_worse}). Highest mean: `{best['method']}` ({_pct(best['mean'])} %)."]
    spread = [r for r in others if r.get("std_ratio")]
    smaller = [r["method"] for r in spread if _smaller_spread(r)]
    larger = [r["method"] for r in spread if _larger_spread(r)]
    raw_smaller = sum(_smaller_spread(r, False) for r in spread)
    raw_larger = sum(_larger_spread(r, False) for r in spread)
    classes = CLASSES.get(runs[0]["config"].get("dataset"), 10)
    floor = _untrained_floor(runs)
    stuck = sorted(m for m, r in rows.items() if r["mean"] < floor)  # judged on the accuracy compared here
    if stuck:
        out.append(f"Did not train under this recipe (mean final test accuracy below {UNTRAINED_FACTOR:g}× chance, "
                   f"{_pct(floor)} % for {classes} classes): {', '.join(stuck)}"
                   + ("" if reference in stuck else f" — comparisons with them say nothing about `{reference}`") + ".")
    caveat = (f" With only {n} seeds a bootstrap interval of a ratio of standard deviations is unreliable "
              f"(each std rests on {n} numbers): read these as indications." if n < 10 else "")
    out.append(f"Claim 2 (smaller spread): `{reference}`'s std is significantly smaller than that of "
               f"{len(smaller)} method(s) ({', '.join(smaller) or '–'}) and significantly larger than that of "
               f"{len(larger)} ({', '.join(larger) or '–'}) — paired bootstrap of the std ratio, Holm-adjusted "
               f"(unadjusted: smaller than {raw_smaller}, larger than {raw_larger}).{caveat}")
    return out


def claims(sections: Sequence[tuple[str, Sequence[dict[str, Any]]]], reference: str = "rfdnn") -> list[str]:
    """One sentence per claim of the paper over all ``sections``.  A claim *holds* in a setting when the
    reference is significantly ahead (Holm-adjusted, ALPHA) of every other method that trained there;
    it is supported when it holds in every setting, partly supported when in some, not supported when
    in none — with, per setting, how many methods the reference is significantly ahead of and behind."""
    judged = []
    for title, runs in sections:
        rows = {r["method"]: r for r in summarize(runs, reference)}
        if reference not in rows:
            continue
        floor = _untrained_floor(runs)
        others = [r for m, r in rows.items() if m != reference and r.get("diff") and r["mean"] >= floor]
        judged.append((title, others))
    if not judged:
        return [f"No `{reference}` runs: the paper's claims cannot be judged here."]

    def sentence(claim: str, ahead, behind, what: str) -> str:
        counts = [(title, sum(ahead(r) for r in o), sum(behind(r) for r in o), len(o)) for title, o in judged]
        holds = sum(a == total and total > 0 for _, a, _, total in counts)
        word = ("supported" if holds == len(counts) else "partly supported" if holds else "not supported")
        detail = "; ".join(f"{title}: ahead of {a}, behind {b} of {total}" for title, a, b, total in counts)
        return (f"{claim}: **{word}** — it holds (`{reference}` significantly {what} every other method that "
                f"trained, Holm-adjusted at {ALPHA:g}) in {holds} of {len(counts)} settings. {detail}.")

    return [sentence("Claim 1, RF-DNN reaches a higher mean accuracy than the STE family", _better, _worse,
                     "more accurate than"),
            sentence("Claim 2, RF-DNN has a smaller spread across seeds", _smaller_spread, _larger_spread,
                     "less spread than")]


def ablation(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Per method with variants (``name[options]`` beside ``name`` in ``runs``): the best variant by mean
    final accuracy and its paired difference to the plain method — computed sentences."""
    final = _final(runs)
    out = []
    for base in sorted(m for m in final if "[" not in m):
        variants = sorted(m for m in final if m.startswith(base + "["))
        if not variants:
            continue
        best = max([base, *variants], key=lambda m: np.mean(list(final[m].values())))
        line = (f"Ablation of `{base}` ({len(variants)} variant(s)): best `{best}`, "
                f"{_pct(float(np.mean(list(final[best].values()))))} %")
        d = paired_difference(final[best], final[base]) if best != base else None
        if d is not None:
            line += f", {100 * d['mean']:+.2f} pp [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}] over `{base}`"
            line += " (significant)" if d["low"] > 0 else " (not significant)"
        out.append(line + ".")
    return out


def overview(sections: Sequence[tuple[str, Sequence[dict[str, Any]]]], reference: str = "rfdnn") -> str:
    """One row per section: the reference's mean ± std and rank, the best method, their paired
    difference, and how many methods the reference beats / loses to (accuracy) and out-spreads."""
    lines = [f"| setting | seeds | `{reference}` (%) | rank | best method (%) | {reference} − best (pp) "
             f"| significantly better / worse than | std significantly smaller / larger than |",
             "|---|---|---|---|---|---|---|---|"]
    for title, runs in sections:
        rows = summarize(runs, reference)
        ref = next((r for r in rows if r["method"] == reference), None)
        if ref is None:
            continue
        best = rows[0]
        final = _final(runs)
        d = paired_difference(final[reference], final[best["method"]]) if best is not ref else None
        dtxt = "–" if d is None else f"{100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"
        others = [r for r in rows if r is not ref and r.get("diff")]
        better = sum(_better(r) for r in others)
        worse = sum(_worse(r) for r in others)
        smaller = sum(_smaller_spread(r) for r in others)
        larger = sum(_larger_spread(r) for r in others)
        lines.append(f"| {title} | {ref['n']} | {_pct(ref['mean'])} ± {_pct(ref['std'])} | {rows.index(ref) + 1} of "
                     f"{len(rows)} | `{best['method']}` {_pct(best['mean'])} | {dtxt} | {better} / {worse} of "
                     f"{len(others)} | {smaller} / {larger} |")
    return "\n".join(lines) + "\n"


def write_results(sections: Sequence[tuple[str, Path]], path: Path, *, reference: str = "rfdnn",
                  assets: Optional[Path] = None) -> str:
    """A results page (``docs/results.md``) from finished comparison folders: per section the setting,
    the table, the verdict sentences and the two plots (copied to ``assets``, default ``<page>_files``)."""
    path = Path(path)
    assets = Path(assets) if assets is not None else path.with_name(path.stem + "_files")
    assets.mkdir(parents=True, exist_ok=True)
    parts = ["# Results\n", "Generated by `rfdnn report` from the runs of `rfdnn compare`; every number "
             "below is computed from the runs' `run.json` files.\n"]
    loaded = [(title, load_runs(root)) for title, root in sections]
    styles = method_styles(sorted({r["config"]["method"] for _, runs in loaded for r in runs}), reference)
    parts += ["## The paper's claims\n",
              "Chen et al. claim that RF-DNN (1) reaches a higher mean test accuracy than the straight-through "
              "estimators and (2) varies less across seeds. On the settings below:\n"]
    parts += [f"- {line}" for line in claims([(t, r) for t, r in loaded if r], reference)] + [""]
    parts += ["## Overview\n", "Per setting (paired t-tests on the accuracy, paired bootstrap on the std ratio, "
              f"both Holm-adjusted over the comparisons with `{reference}` at {ALPHA:g}; methods that did not train "
              "are counted in this table — see each section).\n",
              overview([(t, r) for t, r in loaded if r], reference)]
    for i, ((title, runs), (_, root)) in enumerate(zip(loaded, sections)):
        parts.append(f"## {title}\n")
        if not runs:
            parts.append(f"No finished runs under `{root}`.\n")
            continue
        parts += [_setting(runs) + "\n", summary_table(runs, reference)]
        parts += [f"- {line}" for line in verdict(runs, reference) + ablation(runs)] + [""]
        for png in plot_runs(runs, assets, reference=reference, styles=styles):
            target = png.with_name(f"s{i}_{png.name}")
            png.replace(target)
            parts.append(f"![{title}: {png.stem.replace('_', ' ')}]({assets.name}/{target.name})\n")
    text = "\n".join(parts)
    path.write_text(text)
    return text


#: methods drawn in one panel of the learning curves; beyond, small multiples (one panel per method)
MAX_METHODS_PER_PANEL = 6
_MARKERS = "osD^vP*Xph<>"


def method_styles(methods: Sequence[str], reference: str = "rfdnn") -> dict[str, dict[str, Any]]:
    """One colour and marker per method, the same in every figure of a report: the reference in
    black, drawn thick and on top; the others from tab20 in the order of
    :data:`~rfdnn_bridge.experiments.train.METHODS` (then variants and unknown names, sorted), so
    that a method keeps its colour across reports too."""
    import matplotlib

    known = [m for m in METHODS if m != reference]
    extra = sorted(m for m in set(methods) if m != reference and m not in known)
    slot = {m: i for i, m in enumerate(known + extra)}  # a known method has the same slot in every report
    cmap = matplotlib.colormaps["tab20"]
    styles = {m: dict(color=cmap(slot[m] % 20), marker=_MARKERS[slot[m] % len(_MARKERS)], lw=1.3, zorder=2)
              for m in set(methods) if m != reference}
    styles[reference] = dict(color="black", marker="*", lw=2.6, zorder=5)
    return styles


def _zoom(values: np.ndarray, pad: float = 0.15) -> tuple[float, float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    span = max(hi - lo, 1e-3)
    return max(0.0, lo - pad * span), min(1.0, hi + pad * span)


def plot_runs(runs: Sequence[dict[str, Any]], out_dir: Path, *, reference: str = "rfdnn",
              styles: Optional[dict[str, dict[str, Any]]] = None) -> list[Path]:
    """``learning_curves.png`` and ``final_accuracy.png``, readable with many methods.

    Learning curves: mean test accuracy over seeds per epoch (integer ticks), the accuracy axis
    zoomed to the spread of the methods that trained; up to :data:`MAX_METHODS_PER_PANEL` methods
    in one panel with min–max bands, more as small multiples (one panel per method, the reference
    drawn in every panel for comparison, no bands).  Final accuracy: every seed as a point and
    mean ± std per method, sorted, the reference highlighted.  ``styles`` (:func:`method_styles`)
    keeps colours and markers consistent across the figures of a report; legends sit outside the
    data.  Methods that did not train (below 2× chance) are named in the title, not plotted on the
    zoomed axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out_dir = Path(out_dir)
    by_method: dict[str, np.ndarray] = {}
    curves: dict[str, list[list[float]]] = {}
    for r in runs:
        curves.setdefault(r["config"]["method"], []).append(r["test_accuracy"])
    for m, cs in curves.items():
        n = min(len(c) for c in cs)
        by_method[m] = np.array([c[:n] for c in cs])
    styles = styles or method_styles(list(by_method), reference)
    floor = _untrained_floor(runs) if runs else 0.0
    trained = [m for m, a in by_method.items() if a[:, -1].mean() >= floor]
    stuck = sorted(set(by_method) - set(trained))
    note = f" (not shown, did not train: {', '.join(stuck)})" if stuck else ""
    final = _final(runs)
    order = sorted(trained, key=lambda m: -np.mean(list(final[m].values())))
    paths = []

    # --- learning curves
    late = [a.mean(0)[len(a.mean(0)) // 4:] for m, a in by_method.items() if m in trained]
    ylim = _zoom(np.concatenate(late)) if late else (0.0, 1.0)
    if len(order) <= MAX_METHODS_PER_PANEL:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        axes = [ax]
        for m in order:
            a, st = by_method[m], styles[m]
            ep = np.arange(1, a.shape[1] + 1)
            ax.plot(ep, a.mean(0), color=st["color"], lw=st["lw"], zorder=st["zorder"], marker=st["marker"],
                    markevery=max(1, len(ep) // 8), ms=5, label=f"{m} ({len(a)} seeds)")
            ax.fill_between(ep, a.min(0), a.max(0), color=st["color"], alpha=0.12, lw=0)
        ax.set_title("mean test accuracy over seeds; band: min–max" + note, fontsize=9)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    else:
        cols = 4
        rows_n = math.ceil(len(order) / cols)
        fig, grid = plt.subplots(rows_n, cols, figsize=(3.1 * cols, 2.3 * rows_n), sharex=True, sharey=True,
                                 squeeze=False)
        axes = list(grid.flat)
        ref = by_method.get(reference)
        for ax, m in zip(axes, order):
            a, st = by_method[m], styles[m]
            ep = np.arange(1, a.shape[1] + 1)
            if ref is not None and m != reference:
                ax.plot(np.arange(1, ref.shape[1] + 1), ref.mean(0), color="black", lw=1.6, label=reference)
            ax.plot(ep, a.mean(0), color=st["color"], lw=st["lw"], marker=st["marker"],
                    markevery=max(1, len(ep) // 6), ms=4)
            ax.set_title(f"{m} ({_pct(float(a[:, -1].mean()))} %)", fontsize=8, color=st["color"]
                         if m != reference else "black")
        for ax in axes[len(order):]:
            ax.set_visible(False)
        fig.suptitle(f"mean test accuracy over seeds, each method against `{reference}` (black){note}", fontsize=9)
    for ax in axes:
        ax.set_ylim(*ylim)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.25)
    fig.supxlabel("epoch", fontsize=9)
    fig.supylabel("test accuracy", fontsize=9)
    paths.append(out_dir / "learning_curves.png")
    fig.savefig(paths[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)

    # --- final accuracy, best on top
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(order) + 1.6))
    shown = [np.array(list(final[m].values())) for m in order]
    for i, (m, acc) in enumerate(zip(order, shown)):
        y = len(order) - 1 - i
        st = styles[m]
        ax.scatter(acc, np.full(len(acc), y), s=22, alpha=0.8, color=st["color"], marker=st["marker"], lw=0)
        ax.errorbar(acc.mean(), y, xerr=acc.std(ddof=1) if len(acc) > 1 else 0, fmt="|", color="black",
                    capsize=3, ms=10, lw=2.2 if m == reference else 1.2, zorder=4)
    ax.set_yticks(range(len(order)), order[::-1])
    for label in ax.get_yticklabels():
        if label.get_text() == reference:
            label.set_fontweight("bold")
    if shown:
        ax.set_xlim(*_zoom(np.concatenate(shown), pad=0.08))
    ax.grid(axis="x", alpha=0.25)
    ax.set_xlabel("final test accuracy (points: seeds; bar: mean ± std)")
    if note:
        ax.set_title(note.strip(" ()").capitalize(), fontsize=8)
    paths.append(out_dir / "final_accuracy.png")
    fig.savefig(paths[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)
    return paths
