r"""One training run of a quantized network with one method, resumable bit for bit.

A *method* (:data:`METHODS`, :func:`method_spec`) fixes the weight estimator of
the quantized layers and the optimizer:

* every 1-bit weight estimator of :mod:`rfdnn_bridge.estimators` (``clipped``,
  ``identity``/``ste``, ``approxsign``, ``swishsign``, ``dorefa_w``, ``reste``,
  ``magnitude_sign``, ``mirror_tanh``, ``stochastic_binary``): SGD on the
  estimator's pseudo-gradient, latent weights clipped after each step where the
  estimator's recipe says so;
* ``lne-<mode>`` (``exact``, ``weak``, ``curvature``, ``radial``, ``layer_lr``):
  the identity STE's gradient ∂L/∂Q(w) through the LNE metric,
  :class:`rfdnn_bridge.optim.RFDNN` without the flow — "LNE alone";
* ``rfdnn`` (the paper: weak approximation, Algorithm 2 with regulariser and
  gate), ``rfdnn-reg`` (regulariser, gate open), ``rfdnn-gate`` (gate, α = 0):
  the ablation of docs/math.md §4;
* ``bop``: Bop on the binary weights, SGD on the rest (:mod:`rfdnn_bridge.bop`).

:func:`train_run` trains one (method, seed) and writes ``run.json`` (config,
per-epoch train loss, test accuracy, wall time, the gate's pass rate and N)
and, while it runs, ``checkpoint.pt``.  With the same seed, every method sees
the same initial weights (``torch.manual_seed(seed)`` before the model is
built) and the same batches (a generator seeded from the seed).  A run
interrupted by Ctrl-C or SIGTERM finishes its step and saves a checkpoint there
(and one is written at every epoch end and every ``checkpoint_every`` seconds,
for kills that cannot be caught); ``resume=True`` continues it and, on CPU,
ends with the same weights and numbers, bit for bit, as a run never
interrupted: the checkpoint holds the model, the optimizer and estimator
state, the torch RNG, the data generator's state at the start of the epoch and
the position in it.
"""

from __future__ import annotations

import inspect
import json
import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from ..estimators import get_estimator, list_estimators
from ..layers import clip_latent_weights, epoch_end, quantize_model, step_end
from ..optim import OPTIMIZER_WIDE, RFDNN, lne_param_groups, rfdnn_closure
from .models import MLP, SmallCNN, resnet

__all__ = ["METHODS", "MethodSpec", "method_spec", "RunConfig", "RunResult", "train_run", "build_model",
           "build_optimizer", "CheckpointError"]

_LNE_MODES = ("exact", "weak", "curvature", "radial", "layer_lr")
_STE_METHODS = tuple(n for n in list_estimators(aliases=False) if get_estimator(n).for_weights)
#: every method name :func:`method_spec` knows
METHODS: tuple[str, ...] = (
    _STE_METHODS + tuple(f"lne-{m}" for m in _LNE_MODES) + ("rfdnn", "rfdnn-reg", "rfdnn-gate", "bop")
)


@dataclass(frozen=True)
class MethodSpec:
    """What a method name means: the weight estimator (and its parameters) and the optimizer's
    kind and options."""

    name: str
    estimator: str
    optimizer: str  # "sgd" | "rfdnn" | "bop"
    options: dict = field(default_factory=dict)
    estimator_params: dict = field(default_factory=dict)


def _value(text: str) -> Any:
    """A method option's value: int, float (``inf`` too), bool, None or the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def method_spec(name: str, **overrides: Any) -> MethodSpec:
    """The :class:`MethodSpec` of ``name`` (module docstring); ``overrides`` update the optimizer options
    (e.g. ``tau``, ``alpha``, ``eps`` for the RF-DNN methods) or, for an STE method, the weight
    estimator's parameters (``stochastic_binary[s=0.05]``, ``mirror_tanh[beta=20]``).  Options can
    also be written into the name, ``rfdnn[alpha=1;eps=inf;target_s=0.25]`` — one name per variant
    of an ablation."""
    base, sep, rest = name.partition("[")
    if sep:
        if not rest.endswith("]"):
            raise ValueError(f"method {name!r}: options go in brackets, e.g. rfdnn[alpha=1;eps=inf]")
        for item in filter(None, rest[:-1].split(";")):
            key, eq, val = item.partition("=")
            if not eq:
                raise ValueError(f"method {name!r}: option {item!r} is not key=value")
            overrides.setdefault(key.strip(), _value(val))
        try:
            spec = method_spec(base, **overrides)
        except ValueError as err:  # name the method as written, brackets included
            raise ValueError(str(err).replace(f"method {base!r}:", f"method {name!r}:", 1)) from None
        return MethodSpec(name, spec.estimator, spec.optimizer, spec.options, spec.estimator_params)
    if name in _STE_METHODS:
        try:
            get_estimator(name, **overrides)
        except TypeError:
            known = [k for k in inspect.signature(type(get_estimator(name))).parameters if k not in ("args", "kwargs")]
            raise ValueError(f"method {name!r}: unknown option(s) {sorted(set(overrides) - set(known))}; "
                             f"the options of this estimator are {known}") from None
        except ValueError as err:
            raise ValueError(f"method {name!r}: {err}") from None
        return MethodSpec(name, name, "sgd", estimator_params=dict(overrides))
    elif name.startswith("lne-") and name[4:] in _LNE_MODES:
        spec = MethodSpec(name, "identity", "rfdnn", dict(mode=name[4:]))
    elif name in ("rfdnn", "rfdnn-reg", "rfdnn-gate"):
        opts = dict(mode="weak", flow=True, shifts=((1, -1), (1, -1)), alpha=0.1, eps="auto", gate="group")
        if name == "rfdnn-reg":
            opts["eps"] = math.inf
        if name == "rfdnn-gate":
            opts["alpha"] = 0.0
        spec = MethodSpec(name, "identity", "rfdnn", opts)
    elif name == "bop":
        spec = MethodSpec(name, "identity", "bop", dict(threshold=1e-6, gamma=1e-3))
    else:
        raise ValueError(f"unknown method {name!r}; the methods are {list(METHODS)}")
    if overrides:
        spec = MethodSpec(spec.name, spec.estimator, spec.optimizer, {**spec.options, **overrides})
        _check_optimizer_options(name, spec)
    return spec


def _check_optimizer_options(name: str, spec: MethodSpec) -> None:
    """Build the method's optimizer, as :func:`build_optimizer` does for a run, on a one-layer
    quantized model, so that an unknown option (a typo) or a bad value fails here, naming the
    option, before any training — never a default run under the option's name."""
    from ..bop import bop_optimizer

    tiny = quantize_model(nn.Sequential(nn.Linear(2, 2)), skip=None)
    try:
        build_optimizer(tiny, RunConfig(), spec)
    except TypeError:  # an unexpected keyword of bop_optimizer
        known = sorted(k for k in inspect.signature(bop_optimizer).parameters if k not in ("model", "default"))
        unknown = sorted(set(spec.options) - set(known))
        raise ValueError(f"method {name!r}: unknown option(s) {unknown}; the options are {known}") from None
    except ValueError as err:
        raise ValueError(f"method {name!r}: {err}") from None


@dataclass
class RunConfig:
    """Everything that determines a run (saved in ``run.json``)."""

    dataset: str = "digits"
    method: str = "clipped"
    seed: int = 0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    milestones: tuple[int, ...] = ()  # lr ÷ 10 at these epochs
    model: str = "auto"  # "mlp" | "cnn" | "resnet20" | "resnet32" | "resnet44" | "auto"
    activations: Optional[str] = None  # None: float activations (1W); an estimator name: 1W1A
    method_options: dict = field(default_factory=dict)
    split_seed: int = 0  # train/test split of digits and MNIST-1D
    validation: float = 0.0  # > 0: hold out this fraction of the training set and evaluate on it, not on the test set
    device: str = "cpu"  # a torch.device is accepted and stored as its name
    checkpoint_every: float = 60.0  # seconds

    def __post_init__(self) -> None:
        if isinstance(self.device, torch.device):
            self.device = str(self.device)
        self.milestones = tuple(self.milestones)
        if not (isinstance(self.validation, (int, float)) and 0.0 <= self.validation < 1.0):
            raise ValueError(f"validation must be a fraction in [0, 1), got validation={self.validation!r}")

    def key(self) -> str:
        """The run's folder name: ``<method>/seed<k>``."""
        return f"{self.method}/seed{self.seed}"


@dataclass
class RunResult:
    config: RunConfig
    train_loss: list[float]
    test_accuracy: list[float]
    wall_time: list[float]
    gate_pass: list[Optional[float]]
    regulariser: list[Optional[float]]
    status: str = "finished"
    interrupted_by: Optional[str] = None  # "SIGTERM", "SIGINT" (or "stop_after" in tests) when interrupted

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"]["milestones"] = list(self.config.milestones)
        return d


# --------------------------------------------------------------------------- building
def build_model(config: RunConfig, input_shape: tuple[int, ...], classes: int) -> nn.Module:
    """The config's model for inputs ``[B, *input_shape]``, quantized with the method's estimator.

    With quantized activations (1W1A) the nonlinearity is hardtanh, not ReLU: a quantized layer
    takes the sign of its input, and the sign of a ReLU output is constant (models module docstring)."""
    spec = method_spec(config.method, **config.method_options)
    act = "relu" if config.activations is None else "hardtanh"
    name = config.model
    if name == "auto":
        name = "resnet20" if len(input_shape) == 3 and input_shape[-1] >= 32 else "cnn"
    if name == "mlp":
        model: nn.Module = MLP(int(torch.tensor(input_shape).prod()), (128, 128), classes, act=act)
    elif name == "cnn":
        model = SmallCNN(input_shape[0], classes, dims=len(input_shape) - 1, act=act)
    elif name.startswith("resnet") and name[6:].isdigit():
        model = resnet(int(name[6:]), classes, in_channels=input_shape[0], act=act)
    else:
        raise ValueError(f"unknown model {name!r}; use mlp, cnn, resnet20/32/44 or auto")
    params = dict(spec.estimator_params)
    if getattr(get_estimator(spec.estimator), "ANNEALED", False):
        params.setdefault("epochs", config.epochs)  # annealed over this run's epochs unless given
    return quantize_model(model, weights=spec.estimator, activations=config.activations,
                          weight_params=params or None)


def build_optimizer(model: nn.Module, config: RunConfig, spec: MethodSpec):
    """The method's optimizer for ``model`` (SGD, :class:`RFDNN` on :func:`lne_param_groups`, or Bop + SGD)."""
    sgd = dict(lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay)
    if spec.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), **sgd)
    if spec.optimizer == "rfdnn":
        opts = dict(spec.options)
        flow = {k: opts.pop(k) for k in OPTIMIZER_WIDE if k in opts}
        return RFDNN(lne_param_groups(model, **opts), **sgd, **flow)
    from ..bop import bop_optimizer

    return bop_optimizer(model, **spec.options, default=lambda ps: torch.optim.SGD(ps, **sgd))


def _translation_dims(input_shape: tuple[int, ...]) -> tuple[int, int]:
    return (-2, -1) if len(input_shape) == 3 else (-1, -1)


# --------------------------------------------------------------------------- the run
def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, batch: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        out = model(x[i:i + batch].to(device))
        correct += int((out.argmax(1).cpu() == y[i:i + batch]).sum())
    model.train()
    return correct / max(1, len(x))


class _Interrupt:
    """Ctrl-C and SIGTERM set a flag that the loop checks between steps (main thread only), so a
    checkpoint never holds half a step: the weights moved but the position not (a resume would
    repeat the step), or an epoch's bookkeeping half done."""

    def __enter__(self) -> "_Interrupt":
        self.requested: Optional[str] = None
        self.old: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.old[sig] = signal.signal(sig, self._flag)
            except ValueError:  # not the main thread: signals are not ours to catch
                pass
        return self

    def _flag(self, signum: int, frame: Any) -> None:
        self.requested = signal.Signals(signum).name

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt(self.requested)

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self.old.items():
            signal.signal(sig, old)


def validation_split(data: Any, fraction: float, seed: int = 0) -> Any:
    """``data`` with its test part replaced by a validation part: ``fraction`` of the training set,
    stratified by class, chosen by ``seed``, taken out of the training part — for tuning a recipe
    without looking at the test set."""
    from dataclasses import replace

    import numpy as np

    y = data.y_train.numpy()
    rng = np.random.default_rng(10_000 + int(seed))
    held = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: int(round(fraction * np.sum(y == c)))]
                           for c in np.unique(y)])
    mask = np.zeros(len(y), dtype=bool)
    mask[held] = True
    keep, held = torch.from_numpy(np.flatnonzero(~mask)), torch.from_numpy(np.flatnonzero(mask))
    return replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep], x_test=data.x_train[held],
                   y_test=data.y_train[held])


class CheckpointError(RuntimeError):
    """A run's checkpoint that cannot be resumed: unreadable, or made by another configuration."""


#: RunConfig fields that do not change a run's result (they may differ on resume)
NOT_SETTING = ("device", "checkpoint_every")


def _setting(config: RunConfig) -> dict[str, Any]:
    """What determines a run's result: its config without :data:`NOT_SETTING`, JSON-like."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items() if k not in NOT_SETTING}


def _load_checkpoint(path: Path, config: RunConfig) -> dict[str, Any]:
    """The checkpoint at ``path``, refused (one line naming the file and the fix) if it cannot be
    read or if it was made with another configuration (the differing keys named)."""
    try:
        ck = torch.load(path, weights_only=True)
        if not isinstance(ck, dict):
            raise TypeError(f"a {type(ck).__name__}, not a dict")
    except Exception as err:  # torch's own message spans lines and suggests weights_only=False: not that
        first = (str(err).strip().splitlines() or [""])[0][:120]
        raise CheckpointError(f"{path}: the checkpoint cannot be read ({type(err).__name__}: {first}); "
                              f"delete it to restart run {config.key()}") from None
    saved = ck.get("config")
    if saved is not None:
        now = _setting(config)
        keys = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
        if keys:
            diff = ", ".join(f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}" for k in keys)
            raise CheckpointError(f"{path}: run {config.key()} was started with another configuration ({diff}); "
                                  f"resume with the same options, or use another --out (or delete the folder to "
                                  f"restart it)")
    return ck


def train_run(
    config: RunConfig,
    data: Any,
    out_dir: Path,
    *,
    resume: bool = False,
    progress: Optional[Callable[[int, int], None]] = None,
    augment: Optional[Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = None,
    stop_after: Optional[int] = None,
) -> RunResult:
    """Train one run and write ``out_dir/run.json`` (module docstring).

    ``data`` has ``x_train, y_train, x_test, y_test`` tensors and ``classes``.
    ``progress(step, total)`` is called after every step.  ``augment(x, gen)``
    transforms each training batch (CIFAR's crop + flip) with a generator
    seeded from (seed, epoch, step).  ``stop_after=k`` simulates an interruption after k steps (tests).
    Returns the :class:`RunResult`; ``status`` is ``"interrupted"`` if the run
    stopped early (its checkpoint is then on disk).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.pt"
    if config.validation > 0:
        data = validation_split(data, config.validation, config.split_seed)
    device = torch.device(config.device)
    spec = method_spec(config.method, **config.method_options)
    input_shape = tuple(data.x_train.shape[1:])

    torch.manual_seed(config.seed)
    model = build_model(config, input_shape, data.classes).to(device)
    optimizer = build_optimizer(model, config, spec)
    gen = torch.Generator().manual_seed(config.seed)
    history = dict(train_loss=[], test_accuracy=[], wall_time=[], gate_pass=[], regulariser=[])
    epoch, pos, epoch_gen_state = 0, 0, gen.get_state()
    sums = dict(loss=0.0, count=0, gate=0.0, n=0.0, flow_steps=0)
    elapsed = 0.0
    if resume and ckpt_path.exists():
        ck = _load_checkpoint(ckpt_path, config)
        try:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            torch.set_rng_state(ck["torch_rng"])
            if ck.get("cuda_rng") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(ck["cuda_rng"])
            history, epoch, pos, sums, elapsed = ck["history"], ck["epoch"], ck["pos"], ck["sums"], ck["elapsed"]
            epoch_gen_state = ck["epoch_gen_state"]
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"{ckpt_path}: the checkpoint does not fit run {config.key()} "
                                  f"({type(err).__name__}: {err}); delete it to restart that run") from None

    def save() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        torch.save(dict(config=_setting(config), model=model.state_dict(), optimizer=optimizer.state_dict(),
                        torch_rng=torch.get_rng_state(), cuda_rng=cuda_rng,
                        history=history, epoch=epoch, pos=pos, sums=sums, elapsed=elapsed,
                        epoch_gen_state=epoch_gen_state), tmp)
        tmp.replace(ckpt_path)  # atomic: a kill never leaves half a checkpoint

    loss_fn = nn.CrossEntropyLoss()
    dims = _translation_dims(input_shape)
    n_train = len(data.x_train)
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    steps_done = epoch * steps_per_epoch + pos
    status, interrupted_by = "finished", None
    last_save = time.monotonic()
    start = time.perf_counter() - elapsed
    with _Interrupt() as interrupt:
        try:
            while epoch < config.epochs:
                lr = config.lr * 0.1 ** sum(epoch >= m for m in config.milestones)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                gen.set_state(epoch_gen_state)
                order = _batches(n_train, config.batch_size, gen)
                for idx in order[pos:]:
                    interrupt.check()
                    if stop_after is not None and steps_done >= stop_after:
                        raise KeyboardInterrupt("stop_after")
                    xb, yb = data.x_train[idx], data.y_train[idx]
                    if augment is not None:  # its own generator per (seed, epoch, step): resumable
                        aug = torch.Generator().manual_seed(hash((config.seed, epoch, pos)) & 0x7FFF_FFFF_FFFF)
                        xb = augment(xb, aug)
                    xb, yb = xb.to(device), yb.to(device)
                    if spec.optimizer == "rfdnn" and spec.options.get("flow"):
                        loss = optimizer.step(rfdnn_closure(model, loss_fn, xb, yb, optimizer, dims))
                        diag = optimizer.diagnostics
                        if diag:
                            sums["gate"] += float(sum(float(d["gate"].mean()) for d in diag.values()) / len(diag))
                            sums["n"] += float(sum(float(d["N"].sum()) for d in diag.values()))
                            sums["flow_steps"] += 1
                    else:
                        optimizer.zero_grad()
                        loss = loss_fn(model(xb), yb)
                        loss.backward()
                        optimizer.step()
                    clip_latent_weights(model)
                    step_end(model)
                    loss = loss.detach()
                    if not math.isfinite(float(loss)):
                        raise FloatingPointError(
                            f"run {config.key()}: the training loss is {float(loss)} at epoch {epoch}, step {pos}; "
                            f"lower the learning rate (lr={config.lr})"
                        )
                    sums["loss"] += float(loss) * len(idx)
                    sums["count"] += len(idx)
                    pos += 1
                    steps_done += 1
                    if progress is not None:
                        progress(steps_done, config.epochs * steps_per_epoch)
                    if time.monotonic() - last_save > config.checkpoint_every:
                        elapsed = time.perf_counter() - start
                        save()
                        last_save = time.monotonic()
                epoch_end(model, epoch)
                history["train_loss"].append(sums["loss"] / max(1, sums["count"]))
                history["test_accuracy"].append(_evaluate(model, data.x_test, data.y_test, device))
                history["wall_time"].append(time.perf_counter() - start)
                fs = sums["flow_steps"]
                history["gate_pass"].append(sums["gate"] / fs if fs else None)
                history["regulariser"].append(sums["n"] / fs if fs else None)
                sums = dict(loss=0.0, count=0, gate=0.0, n=0.0, flow_steps=0)
                epoch, pos, epoch_gen_state = epoch + 1, 0, gen.get_state()
                elapsed = time.perf_counter() - start
                save()
                last_save = time.monotonic()
        except KeyboardInterrupt as err:
            elapsed = time.perf_counter() - start
            save()
            status = "interrupted"
            interrupted_by = str(err.args[0]) if err.args else "SIGINT"
    result = RunResult(config, **history, status=status, interrupted_by=interrupted_by)
    (out_dir / "run.json").write_text(json.dumps(result.to_json(), indent=1))
    if status == "finished":
        torch.save(model.state_dict(), out_dir / "model.pt")
    return result


def iterate_runs(
    methods: list[str], seeds: list[int], base: RunConfig, vary_split: bool = False
) -> Iterator[RunConfig]:
    """Every (method, seed) config of a comparison, seeds outer (a comparison cut short still has
    every method on its first seeds, paired); ``vary_split``: seed k uses the train/test split
    ``base.split_seed + k`` (the same for every method of that seed, so runs stay paired)."""
    for s in seeds:
        split = base.split_seed + s if vary_split else base.split_seed
        for m in methods:
            yield RunConfig(**{**asdict(base), "method": m, "seed": s, "split_seed": split})
