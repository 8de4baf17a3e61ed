"""Command line: ``rfdnn compare``, ``rfdnn report`` and ``rfdnn study`` (also ``python -m rfdnn_bridge …``).

``rfdnn compare`` trains every method on every seed (same initial weights and
batches per seed), writes one folder per run (``<out>/<method>/seed<k>/run.json``,
checkpoints while running) and then ``summary.md`` and PNG plots in ``<out>``.
Scale-out without a scheduler of our own: ``--jobs N`` runs independent runs in
N processes; ``--only method=reste,seed=3`` runs one run (or a subset) so that a
batch system can fan the comparison out, and ``--collect DIR`` merges finished
runs into the summary.  ``--resume`` continues interrupted runs.

``rfdnn report "TITLE=DIR" … --out docs/results.md`` writes a results page from
finished comparison folders: per section the table, the verdict on the paper's
two claims computed from the intervals, and the plots.

``rfdnn study yin|sbn|reste`` runs one estimator study (:mod:`rfdnn_bridge.studies`) and writes
``report.json``, ``report.md`` and PNG plots into ``--out`` (default ``./study-<name>``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterator, Optional

from lnegeom.cli import OneLineParser, UsageError, output_folder, positive_int, run_cli

__all__ = ["main", "PRESETS", "DEFAULT_METHODS"]

DEFAULT_METHODS = "clipped,identity,approxsign,reste,lne-weak,rfdnn"
#: ``rfdnn compare --quick``: what it changes (options given on the command line win)
QUICK: dict[str, Any] = dict(epochs=6, seeds=3, model="cnn")

#: named recipes; ``paper-cifar10`` is the paper's (Section 7): ResNet-20, batch 128, SGD
#: Nesterov 0.9, lr 0.1 ÷ 10 at epochs 80/150/190 of 200, weight decay 5e-4, 1-bit weights,
#: float activations, weak approximation
PRESETS: dict[str, dict[str, Any]] = {
    "paper-cifar10": dict(dataset="cifar10", model="resnet20", batch_size=128, lr=0.1, momentum=0.9, nesterov=True,
                          milestones=(80, 150, 190), epochs=200, weight_decay=5e-4, activations=None),
}


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="rfdnn", description="Training experiments of the RF-DNN bridge.")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="train methods x seeds and summarise (mean ± std, paired differences, plots)")
    c.add_argument("--dataset", default="digits", choices=["digits", "mnist1d", "cifar10"])
    c.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated (default {DEFAULT_METHODS}); "
                   "see --list-methods")
    c.add_argument("--seeds", type=positive_int, default=None, help="number of seeds 0..k-1 (default 5; --quick 3)")
    c.add_argument("--epochs", type=positive_int, default=None, help="epochs per run (default 15; preset's; --quick 6)")
    c.add_argument("--quick", action="store_true",
                   help=f"a first look in under a minute on 2 cores: the small CNN, {QUICK['epochs']} epochs, "
                        f"{QUICK['seeds']} seeds (each still settable)")
    c.add_argument("--batch-size", type=positive_int, default=None)
    c.add_argument("--lr", type=float, default=None)
    c.add_argument("--momentum", type=float, default=None)
    c.add_argument("--weight-decay", type=float, default=None)
    c.add_argument("--model", default=None, help="mlp, cnn, resnet20/32/44 or auto (default)")
    c.add_argument("--activations", default=None, help="an estimator name for 1W1A (default: float activations)")
    c.add_argument("--split-seed", type=int, default=0, help="train/test split of digits and MNIST-1D")
    c.add_argument("--validation", type=float, default=0.0,
                   help="evaluate on this fraction of the training set, held out (for tuning), not on the test set")
    c.add_argument("--vary-split", action="store_true",
                   help="seed k uses split split-seed + k (same for all methods of the seed)")
    c.add_argument("--preset", default=None, choices=sorted(PRESETS))
    c.add_argument("--data-dir", type=Path, default=None, help="CIFAR-10 python-format folder (cifar-10-batches-py)")
    c.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, … or auto (default)")
    c.add_argument("--out", type=Path, default=Path("rfdnn-compare"), help="results folder (default ./rfdnn-compare)")
    c.add_argument("--jobs", type=positive_int, default=None,
                   help="runs in parallel processes on this machine (default: one per CPU core on cpu, 1 on cuda)")
    c.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads per run on cpu (default: cores / jobs)")
    c.add_argument("--only", default=None, help="run a subset, e.g. method=reste,seed=3 (for job arrays)")
    c.add_argument("--collect", type=Path, default=None, help="only merge finished runs under DIR into the summary")
    c.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoints")
    c.add_argument("--reference", default="rfdnn", help="method the paired differences are taken against")
    c.add_argument("--recipes", type=Path, default=None,
                   help='JSON file {"method": {"option": value}}: options of those methods (e.g. tuned on '
                        'a validation split); the runs keep the method\'s name and record the options')
    c.add_argument("--list-methods", action="store_true")
    c.add_argument("--no-progress", action="store_true")
    r = sub.add_parser("report", help="a results page (e.g. docs/results.md) from finished comparison folders")
    r.add_argument("sections", nargs="+", help='"TITLE=DIR" per section, e.g. "Digits, 1-bit weights=runs/digits"')
    r.add_argument("--out", type=Path, default=Path("results.md"), help="the page (default ./results.md)")
    r.add_argument("--reference", default="rfdnn")
    from .studies import STUDIES

    s = sub.add_parser("study", help="an estimator study: " + "; ".join(f"{k} ({v[1]})" for k, v in STUDIES.items()))
    s.add_argument("name", choices=sorted(STUDIES))
    s.add_argument("--out", type=Path, default=None, help="report folder (default ./study-<name>)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quick", action="store_true", help="a tiny version (seconds), for smoke tests")
    s.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"compare": _compare, "report": _report, "study": _study}
    return run_cli("rfdnn", lambda: commands[args.command](args))


def _report(args: argparse.Namespace) -> int:
    from .experiments.report import write_results

    sections = []
    for item in args.sections:
        title, sep, folder = item.rpartition("=")
        if not sep or not title:
            raise UsageError(f"section {item!r}: expected TITLE=DIR")
        if not Path(folder).is_dir():
            raise UsageError(f"section {title!r}: {folder} is not a folder")
        sections.append((title, Path(folder)))
    if args.out.is_dir() or not args.out.parent.is_dir():
        raise UsageError(f"--out {args.out}: expected the path of the page to write, in an existing folder")
    write_results(sections, args.out, reference=args.reference)
    print(f"wrote {args.out}")
    return 0


def _study(args: argparse.Namespace) -> int:
    from .studies import run_study

    out = output_folder(args.out if args.out is not None else Path(f"study-{args.name}"))
    run_study(args.name, out, seed=args.seed, quick=args.quick, progress=not args.no_progress)
    print((out / "report.md").read_text())
    print(f"wrote {out}/report.json, report.md and plots")
    return 0


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return name


def _parse_only(text: Optional[str]) -> dict[str, set[str]]:
    if not text:
        return {}
    out: dict[str, set[str]] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key not in ("method", "seed"):
            raise UsageError(
                f"--only {text!r}: expected key=value pairs with keys method, seed (e.g. method=reste,seed=3)"
            )
        out.setdefault(key, set()).add(value)
    return out


def load_dataset(name: str, split_seed: int = 0, data_dir: Optional[Path] = None):
    """(data, augment) for ``name``: an object with x_train, y_train, x_test, y_test, classes."""
    from .experiments import data as D

    if name == "digits":
        data = D.load_digits(split_seed=split_seed)
    elif name == "mnist1d":
        data = D.load_mnist1d(split_seed=split_seed)
    elif data_dir is None:
        raise ValueError("--dataset cifar10 needs --data-dir pointing at the extracted cifar-10-batches-py folder")
    else:
        data = D.load_cifar10(data_dir)
    return data, data.augment


#: set in a worker process once it was told to stop: it then starts no further run
_WORKER_STOP: Optional[str] = None
#: set in a worker process while a run trains (the parent watchdog waits for its checkpoint)
_WORKER_BUSY = threading.Event()
#: exit status of a comparison stopped by a signal (128 + its number, as a shell reports it)
_SIGNAL_STATUS = {"SIGINT": 128 + signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM}


def _run_one(config_dict: dict[str, Any], root: str, data_dir: Optional[str], resume: bool,
             threads: Optional[int]) -> tuple[str, Optional[str]]:
    """Worker: one run (module-level so that process pools can pickle it); returns the line to
    print and the signal that interrupted it (None if it finished)."""
    global _WORKER_STOP
    import torch

    from .experiments.train import RunConfig, train_run

    cfg = RunConfig(**config_dict)
    if _WORKER_STOP:
        return f"{cfg.key()}: not started ({_WORKER_STOP})", _WORKER_STOP
    if threads:
        torch.set_num_threads(threads)
    data, augment = load_dataset(cfg.dataset, cfg.split_seed, Path(data_dir) if data_dir else None)
    _WORKER_BUSY.set()
    try:
        res = train_run(cfg, data, Path(root) / cfg.key(), resume=resume, augment=augment)
    finally:
        _WORKER_BUSY.clear()
    if res.interrupted_by:
        _WORKER_STOP = res.interrupted_by
        return f"{cfg.key()}: interrupted by {res.interrupted_by}, checkpoint kept", res.interrupted_by
    acc = res.test_accuracy[-1] if res.test_accuracy else float("nan")
    return f"{cfg.key()}: {res.status}, test accuracy {acc:.4f}", None


def _worker_init(parent: int) -> None:
    """In each worker of ``--jobs N``: a signal between runs stops the worker from starting
    another, and the worker stops (checkpointing its run) when the parent dies, so that no
    orphan keeps writing into ``--out``."""

    def stop(signum: int, frame: Any) -> None:
        global _WORKER_STOP
        _WORKER_STOP = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        deadline = time.monotonic() + 600
        while True:  # the run in progress checkpoints and stops (repeated: a run just starting may miss one) …
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)
            if not _WORKER_BUSY.is_set() or time.monotonic() > deadline:
                break
        os._exit(128 + signal.SIGTERM)  # … then the worker leaves: nobody will send it work again

    threading.Thread(target=watch, daemon=True).start()


@contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM (and SIGINT) raise KeyboardInterrupt(name) in the main thread while the block runs."""
    def raise_(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, raise_) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .experiments.report import load_runs, plot_runs, write_summary
    from .experiments.train import METHODS, RunConfig, iterate_runs, method_spec

    console = Console()
    if args.list_methods:
        for m in METHODS:
            s = method_spec(m)
            console.print(f"{m:18s} estimator={s.estimator:14s} optimizer={s.optimizer} {s.options or ''}")
        return 0
    if args.collect is not None:
        return _summarise(args.collect, args.reference, console, load_runs, write_summary, plot_runs)

    if not 0.0 <= args.validation < 1.0:
        raise UsageError(f"--validation {args.validation}: expected a fraction in [0, 1)")
    base = RunConfig(dataset=args.dataset, epochs=15, model="auto", device=_device(args.device),
                     split_seed=args.split_seed, validation=args.validation)
    if args.preset:
        base = replace(base, **PRESETS[args.preset])
    if args.quick:
        base = replace(base, epochs=QUICK["epochs"], model=QUICK["model"])
    if args.seeds is None:
        args.seeds = QUICK["seeds"] if args.quick else 5
    for field_name, value in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                              ("momentum", args.momentum), ("weight_decay", args.weight_decay),
                              ("model", args.model), ("activations", args.activations)):
        if value is not None:
            base = replace(base, **{field_name: value})
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise UsageError(f"--methods {args.methods!r} names no method; see rfdnn compare --list-methods")
    for m in methods:
        try:
            method_spec(m)  # unknown names, options and values fail here, before any training
        except ValueError as err:
            raise UsageError(f"--methods: {err}") from None
    if args.dataset == "cifar10" and args.data_dir is None:
        raise UsageError("--dataset cifar10 needs --data-dir pointing at the extracted cifar-10-batches-py folder")
    recipes = _read_recipes(args.recipes, methods, method_spec)
    only = _parse_only(args.only)
    configs = [replace(c, method_options=dict(recipes.get(c.method, {})))
               for c in iterate_runs(methods, list(range(args.seeds)), base, args.vary_split)
               if ("method" not in only or c.method in only["method"])
               and ("seed" not in only or str(c.seed) in only["seed"])]
    if not configs:
        raise UsageError(f"--only {args.only!r} selects no run of methods {methods} x seeds 0..{args.seeds - 1}")
    output_folder(args.out)
    data_dir = str(args.data_dir) if args.data_dir else None
    console.print(f"[bold]rfdnn compare[/]: {len(configs)} runs ({len(methods)} methods x seeds), "
                  f"dataset {base.dataset}, {base.epochs} epochs, device {base.device} → {args.out}")
    cores = os.cpu_count() or 1
    jobs = args.jobs if args.jobs is not None else (min(cores, len(configs)) if base.device == "cpu" else 1)
    jobs = max(1, jobs)
    threads = args.threads or max(1, cores // jobs) if base.device == "cpu" else None
    work = [(asdict(c), str(args.out), data_dir, args.resume, threads) for c in configs]
    console.print(f"{jobs} job(s) at a time" + (f", {threads} torch thread(s) each" if threads else ""))
    failed, stopped = _execute(work, jobs, console, not args.no_progress)
    if stopped:
        console.print(f"[red]stopped by {stopped}[/]: interrupted runs keep their checkpoints; continue with the "
                      f"same command and --resume")
        return _SIGNAL_STATUS.get(stopped, 1)
    if only:
        console.print("subset done; merge with: rfdnn compare --collect " + str(args.out))
        return 1 if failed else 0
    rc = _summarise(args.out, args.reference, console, load_runs, write_summary, plot_runs)
    return 1 if failed else rc


def _read_recipes(path: Optional[Path], methods: list[str], method_spec: Any) -> dict[str, dict[str, Any]]:
    """``--recipes``: method → options, each checked by building the method with them."""
    if path is None:
        return {}
    import json

    try:
        recipes = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UsageError(f"--recipes {path}: not a readable JSON file ({err})") from None
    if not isinstance(recipes, dict) or not all(isinstance(v, dict) for v in recipes.values()):
        raise UsageError(f"--recipes {path}: expected {{\"method\": {{\"option\": value}}}}")
    unknown = sorted(set(recipes) - set(methods))
    if unknown:
        raise UsageError(f"--recipes {path}: methods {unknown} are not among --methods")
    for m, opts in recipes.items():
        try:
            method_spec(m, **opts)
        except ValueError as err:
            raise UsageError(f"--recipes {path}: {err}") from None
    return recipes


def _execute(work: list[tuple], jobs: int, console: Any, progress: bool) -> tuple[int, Optional[str]]:
    """Run ``work``; returns the number of runs that raised (each reported, the others kept) and
    the signal that stopped the comparison (None if it ran to the end).

    SIGTERM or Ctrl-C stops the whole comparison, not only the current run: the runs in
    progress checkpoint (``--resume`` continues them) and no further run starts; with
    ``--jobs N`` the workers are told to stop and waited for.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    failed: list[str] = []
    stopped: Optional[str] = None

    def report(w: tuple, outcome: Any) -> None:
        nonlocal stopped
        if isinstance(outcome, BaseException):  # one failing run must not lose the others
            failed.append(f"{w[0]['method']}/seed{w[0]['seed']}: {type(outcome).__name__}: {outcome}")
            console.print(failed[-1], style="red", markup=False)
            return
        line, signal_name = outcome
        console.print(line, markup=False)  # names like rfdnn[alpha=1] are not markup
        stopped = stopped or signal_name

    with Progress(*columns, console=console, disable=not progress) as bar:
        task = bar.add_task("runs", total=len(work))
        if jobs == 1:
            try:
                with _signals_raise():  # between runs; inside one, train_run checkpoints first
                    for w in work:
                        try:
                            outcome = _run_one(*w)
                        except Exception as err:
                            outcome = err
                        report(w, outcome)
                        bar.advance(task)
                        if stopped:
                            break
            except KeyboardInterrupt as err:
                stopped = str(err.args[0]) if err.args else "SIGINT"
        else:
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_worker_init,
                                       initargs=(os.getpid(),))
            futures: dict[Any, tuple] = {}
            try:
                with _signals_raise():
                    futures = {pool.submit(_run_one, *w): w for w in work}
                    for fut in as_completed(futures):
                        exc = fut.exception()
                        report(futures[fut], exc if exc is not None else fut.result())
                        bar.advance(task)
            except KeyboardInterrupt as err:
                stopped = str(err.args[0]) if err.args else "SIGINT"
                console.print(f"[red]{stopped}[/]: stopping the workers (their runs checkpoint) …")
                for fut in futures:
                    fut.cancel()
                for child in multiprocessing.active_children():
                    if child.pid is not None:
                        os.kill(child.pid, signal.SIGTERM)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    if failed:
        console.print(f"[red]{len(failed)} run(s) failed[/] (the summary covers the finished ones):")
        for line in failed:
            console.print("  " + line, markup=False)
    return len(failed), stopped


def _summarise(root: Path, reference: str, console: Any, load_runs, write_summary, plot_runs) -> int:
    runs = load_runs(root)
    if not runs:
        console.print(f"[red]no finished run.json under {root}[/]")
        return 1
    text = write_summary(runs, Path(root) / "summary.md", reference=reference)
    plots = plot_runs(runs, Path(root), reference=reference)
    print(text)
    console.print(f"wrote {Path(root) / 'summary.md'}, " + ", ".join(str(p) for p in plots))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
