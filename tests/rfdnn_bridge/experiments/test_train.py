"""rfdnn_bridge.experiments.train / report and the ``rfdnn compare`` command (tiny runs)."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch

from rfdnn_bridge.cli import main
from rfdnn_bridge.experiments.data import load_digits
from rfdnn_bridge.experiments.report import paired_difference, std_ratio, summarize
from rfdnn_bridge.experiments.train import METHODS, RunConfig, method_spec, train_run


@pytest.fixture(scope="module")
def digits():
    return load_digits(split_seed=0)


def _small(data, n=300):
    from dataclasses import replace

    return replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n], x_test=data.x_test[:200],
                   y_test=data.y_test[:200])


@pytest.mark.parametrize("method", ["clipped", "rfdnn", "bop", "mirror_tanh"])
def test_interrupted_run_resumes_bit_for_bit(tmp_path, digits, method):
    data = _small(digits)
    cfg = RunConfig(method=method, epochs=2, seed=3, batch_size=32)
    full = train_run(cfg, data, tmp_path / "full")
    part = train_run(cfg, data, tmp_path / "part", stop_after=13)  # mid-epoch 2 of 10 steps each
    assert part.status == "interrupted" and (tmp_path / "part" / "checkpoint.pt").exists()
    done = train_run(cfg, data, tmp_path / "part", resume=True)
    assert done.status == "finished"
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)
    assert full.train_loss == done.train_loss and full.test_accuracy == done.test_accuracy


def test_a_config_with_a_torch_device_writes_its_run_json(tmp_path, digits):
    cfg = RunConfig(method="clipped", epochs=1, batch_size=64, device=torch.device("cpu"))
    assert cfg.device == "cpu"
    res = train_run(cfg, _small(digits, 64), tmp_path / "run")
    assert res.status == "finished"
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["device"] == "cpu"


def test_same_seed_same_start_and_order_across_methods(tmp_path, digits):
    from rfdnn_bridge.experiments.train import build_model

    shapes = digits.x_train.shape[1:]
    torch.manual_seed(7)
    a = build_model(RunConfig(method="clipped"), tuple(shapes), 10)
    torch.manual_seed(7)
    b = build_model(RunConfig(method="rfdnn"), tuple(shapes), 10)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb)


def test_method_registry_and_errors():
    assert {"clipped", "reste", "lne-exact", "lne-weak", "lne-curvature", "lne-radial", "lne-layer_lr",
            "rfdnn", "rfdnn-reg", "rfdnn-gate", "bop"} <= set(METHODS)
    assert method_spec("rfdnn-gate").options["alpha"] == 0.0
    assert math.isinf(method_spec("rfdnn-reg").options["eps"])
    assert method_spec("rfdnn", eps=0.5).options["eps"] == 0.5
    with pytest.raises(ValueError, match="unknown method 'sgd-magic'"):
        method_spec("sgd-magic")


def test_paired_statistics_on_hand_made_numbers():
    a = {0: 0.9, 1: 0.8, 2: 0.85}
    b = {0: 0.8, 1: 0.75, 2: 0.8}
    d = paired_difference(a, b)
    diffs = np.array([0.1, 0.05, 0.05])
    half = 4.302652729911275 * diffs.std(ddof=1) / math.sqrt(3)  # t_{0.975, 2}
    assert d["mean"] == pytest.approx(diffs.mean()) and d["high"] - d["mean"] == pytest.approx(half)
    q = std_ratio(a, b)
    assert q["ratio"] == pytest.approx(np.std([0.9, 0.8, 0.85], ddof=1) / np.std([0.8, 0.75, 0.8], ddof=1))
    assert q["low"] <= q["ratio"] <= q["high"] or math.isnan(q["low"])
    assert paired_difference({0: 1.0}, {0: 0.5}) is None


def test_compare_command_writes_runs_summary_and_plots(tmp_path):
    out = tmp_path / "cmp"
    rc = main(["compare", "--methods", "clipped,rfdnn", "--seeds", "2", "--epochs", "1", "--out", str(out),
               "--no-progress", "--device", "cpu", "--jobs", "1"])
    assert rc == 0
    for m in ("clipped", "rfdnn"):
        for s in (0, 1):
            run = json.loads((out / m / f"seed{s}" / "run.json").read_text())
            assert run["status"] == "finished" and len(run["test_accuracy"]) == 1
            assert 0.0 <= run["test_accuracy"][0] <= 1.0 and run["wall_time"][0] > 0
            if m == "rfdnn":
                assert 0.0 <= run["gate_pass"][0] <= 1.0 and run["regulariser"][0] > 0
    text = (out / "summary.md").read_text()
    assert "| clipped | 2 |" in text and "| rfdnn | 2 |" in text
    assert (out / "learning_curves.png").stat().st_size > 1000 and (out / "final_accuracy.png").stat().st_size > 1000
    rows = summarize([json.loads(p.read_text()) for p in out.rglob("run.json")])
    assert {r["method"] for r in rows} == {"clipped", "rfdnn"}


def test_only_and_collect_fan_out(tmp_path):
    out = tmp_path / "fan"
    for seed in ("0", "1"):
        assert main(["compare", "--methods", "clipped,identity", "--seeds", "2", "--epochs", "1", "--out", str(out),
                     "--only", f"method=identity,seed={seed}", "--no-progress", "--device", "cpu", "--jobs", "1"]) == 0
    assert sorted(p.parent.name for p in out.rglob("run.json")) == ["seed0", "seed1"]
    assert not (out / "summary.md").exists()
    assert main(["compare", "--collect", str(out), "--reference", "identity"]) == 0
    assert "| identity | 2 |" in (out / "summary.md").read_text()



@pytest.mark.parametrize("argv, match", [
    (["--methods", "clipped", "--seeds", "1", "--only", "method=reste"], "selects no run"),
    (["--methods", "clipped", "--only", "reste"], "key=value"),
    (["--methods", "clipped,nope"], "unknown method 'nope'"),
    (["--methods", "rfdnn[eps_fator=10]"], r"method 'rfdnn\[eps_fator=10\]': unknown param-group option\(s\) "
                                          r"\['eps_fator'\]; the options are \[.*'eps_factor'"),
    (["--methods", "rfdnn[alpha=abc]"], r"alpha must be a finite number >= 0, got alpha='abc'"),
    (["--methods", "clipped[d=1]"], r"unknown option\(s\) \['d'\]; the options of this estimator are \['c', "),
    (["--methods", "bop[thresh=1]"], r"the options are \['gamma', 'threshold'\]"),
    (["--methods", " , "], "names no method"),
    (["--dataset", "cifar10"], "needs --data-dir"),
    (["--seeds", "0"], r"argument --seeds: expected an integer >= 1, got 0"),
    (["--epochs", "-1"], r"argument --epochs: expected an integer >= 1, got -1"),
    (["--batch-size", "0"], r"argument --batch-size"),
    (["--jobs", "x"], r"argument --jobs: expected an integer >= 1, got 'x'"),
])
def test_compare_usage_errors_are_one_line_and_exit_2(tmp_path, capsys, argv, match):
    import re

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:  # argparse's own errors exit from parse_args
        rc = main(["compare", "--out", str(out), "--epochs", "1", "--no-progress", *argv])
        raise SystemExit(rc)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and re.search(match, err) and len(err.strip().splitlines()) == 1, err
    assert not out.exists() or not any(out.iterdir())  # nothing trained, nothing written


def test_compare_out_that_is_a_file_or_unwritable_is_a_usage_error(tmp_path, capsys):
    import os

    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["compare", "--methods", "clipped", "--out", str(afile)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["compare", "--methods", "clipped", "--out", str(afile / "sub")]) == 2
    assert "cannot create the folder" in capsys.readouterr().err
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["compare", "--methods", "clipped", "--out", str(locked / "x")]) == 2
        assert "cannot create the folder" in capsys.readouterr().err


def _fake_cifar(folder, n=8):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"batch_label": name.encode(), b"labels": [int(v) for v in rng.integers(0, 10, n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=2)


def test_compare_on_cifar_shaped_files_with_augmentation(tmp_path):
    _fake_cifar(tmp_path / "cifar-10-batches-py")
    out = tmp_path / "c"
    assert main(["compare", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--methods", "clipped",
                 "--seeds", "1", "--epochs", "1", "--model", "cnn", "--batch-size", "16", "--out", str(out),
                 "--reference", "clipped", "--no-progress", "--device", "cpu", "--jobs", "1"]) == 0
    assert json.loads((out / "clipped" / "seed0" / "run.json").read_text())["status"] == "finished"
    assert main(["compare", "--dataset", "cifar10", "--methods", "clipped", "--out", str(out), "--no-progress"]) == 2


def _fake_run(method, seed, acc):
    cfg = dict(RunConfig(method=method, seed=seed).__dict__, milestones=[])
    return dict(config=cfg, test_accuracy=[acc], train_loss=[1.0], wall_time=[1.0], gate_pass=[None],
                regulariser=[None], status="finished")


def test_verdict_and_results_page_follow_the_numbers(tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.002, 20)
    for seed in range(20):
        for method, acc in (("rfdnn", 0.90 + noise[seed]), ("worse", 0.85 + noise[seed] + rng.normal(0, 0.02)),
                            ("better", 0.95 + noise[seed]), ("same", 0.90 + noise[seed] + 0.001 * (-1) ** seed)):
            d = tmp_path / "runs" / method / f"seed{seed}"
            d.mkdir(parents=True)
            (d / "run.json").write_text(json.dumps(_fake_run(method, seed, float(acc))))
    assert main(["report", "Fake=" + str(tmp_path / "runs"), "--out", str(tmp_path / "results.md")]) == 0
    text = (tmp_path / "results.md").read_text()
    assert "significantly better than 1 method(s) (worse)" in text
    assert "indistinguishable from 1 (same)" in text and "significantly worse than 1 (better)" in text
    assert "significantly smaller than that of 1 method(s) (worse)" in text  # worse has 10x the spread
    assert (tmp_path / "results_files" / "s0_final_accuracy.png").exists()
    overview = text.split("## Overview")[1].split("## Fake")[0]
    assert "| Fake | 20 | " in overview and " of 4 | `better` 94.9" in overview and "| -5.00 [" in overview
    assert "| 1 / 1 of 3 | 1 / 0 |" in overview  # beats worse, loses to better; spread smaller than worse's


def test_method_options_in_the_name():
    spec = method_spec("rfdnn[alpha=1;eps=inf;target_s=0.25;gate=element]")
    assert spec.options["alpha"] == 1 and math.isinf(spec.options["eps"]) and spec.options["target_s"] == 0.25
    assert spec.options["gate"] == "element" and spec.options["flow"] is True
    assert method_spec("lne-exact[tau=auto]").options == {"mode": "exact", "tau": "auto"}
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['alpha'\]; the options of this estimator are"):
        method_spec("clipped[alpha=1]")
    ste = method_spec("stochastic_binary[s=0.01]")
    assert ste.estimator == "stochastic_binary" and ste.estimator_params == {"s": 0.01} and ste.options == {}
    with pytest.raises(ValueError, match="not key=value"):
        method_spec("rfdnn[alpha]")


def test_sigterm_mid_run_finishes_the_step_and_resumes_bit_for_bit(tmp_path, digits):
    import os
    import signal

    data = _small(digits)
    cfg = RunConfig(method="rfdnn", epochs=2, seed=5, batch_size=32)
    full = train_run(cfg, data, tmp_path / "full")

    def progress(step, total):
        if step == 13:  # the signal arrives inside the step's bookkeeping
            os.kill(os.getpid(), signal.SIGTERM)

    part = train_run(cfg, data, tmp_path / "part", progress=progress)
    assert part.status == "interrupted"
    done = train_run(cfg, data, tmp_path / "part", resume=True)
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a) and full.train_loss == done.train_loss


def test_1w1a_models_use_hardtanh():
    from torch import nn

    from rfdnn_bridge.experiments.train import build_model

    for activations, want, not_want in ((None, nn.ReLU, nn.Hardtanh), ("clipped", nn.Hardtanh, nn.ReLU)):
        model = build_model(RunConfig(method="clipped", activations=activations), (1, 8, 8), 10)
        kinds = {type(m) for m in model.modules()}
        assert want in kinds and not_want not in kinds, activations


def test_ablation_names_the_best_variant_and_its_paired_difference():
    from rfdnn_bridge.experiments.report import ablation

    runs = []
    for seed in range(6):
        for method, acc in (("rfdnn", 0.90), ("rfdnn[alpha=1]", 0.93), ("rfdnn[alpha=0.01]", 0.89),
                            ("lne-weak", 0.92), ("lne-weak[target_s=0.1]", 0.92 + 0.01 * (-1) ** seed)):
            runs.append(_fake_run(method, seed, acc + 0.001 * seed))
    lines = ablation(runs)
    assert len(lines) == 2  # clipped-style methods without variants get no line
    assert lines[0].startswith("Ablation of `lne-weak` (1 variant(s)): best `")
    assert "not significant" in lines[0] or "best `lne-weak`," in lines[0]
    assert lines[1].startswith("Ablation of `rfdnn` (2 variant(s)): best `rfdnn[alpha=1]`, 93.")
    assert "+3.00 pp [+3.00, +3.00]" in lines[1] and "(significant)" in lines[1]


def test_a_variant_name_is_printed_and_stored_verbatim(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--methods", "clipped[c=0.5]", "--seeds", "1", "--epochs", "1", "--model", "mlp",
                 "--out", str(out), "--no-progress", "--device", "cpu", "--jobs", "1"]) == 0
    assert "clipped[c=0.5]/seed0: finished" in capsys.readouterr().out  # not eaten as rich markup
    run = json.loads((out / "clipped[c=0.5]" / "seed0" / "run.json").read_text())
    assert run["config"]["method"] == "clipped[c=0.5]"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigterm_stops_the_whole_comparison_and_leaves_no_orphans(tmp_path, jobs):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "c"
    cmd = [sys.executable, "-m", "rfdnn_bridge", "compare", "--methods", "clipped,identity,approxsign", "--seeds", "1",
           "--epochs", "500", "--out", str(out), "--no-progress", "--device", "cpu", "--jobs", jobs, "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while len(list(out.rglob("checkpoint.pt"))) < int(jobs):  # runs under way (a checkpoint per epoch)
        assert proc.poll() is None, proc.communicate()[0]
        assert time.time() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    text = proc.communicate(timeout=60)[0]
    assert proc.returncode == 128 + signal.SIGTERM, text  # non-zero: a scheduler requeues the job
    assert "stopped by SIGTERM" in text
    runs = [json.loads(p.read_text()) for p in out.rglob("run.json")]
    assert len(runs) == int(jobs) and all(r["status"] == "interrupted" for r in runs), text  # none started after
    assert all(r["interrupted_by"] == "SIGTERM" for r in runs)
    assert not (out / "summary.md").exists()
    snapshot = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    time.sleep(1.5)  # no orphan worker keeps writing into --out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == snapshot


def test_resume_with_another_configuration_or_a_corrupt_checkpoint_is_refused(tmp_path, digits):
    from rfdnn_bridge.experiments.train import CheckpointError

    data = _small(digits)
    cfg = RunConfig(method="clipped", epochs=2, seed=1, batch_size=32)
    assert train_run(cfg, data, tmp_path / "r", stop_after=5).status == "interrupted"
    other = RunConfig(method="clipped", epochs=3, seed=1, batch_size=32, lr=0.1)
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: run clipped/seed1 was started with another "
                                              r"configuration \(epochs: checkpoint 2, now 3, lr: checkpoint 0\.05, "
                                              r"now 0\.1\)"):
        train_run(other, data, tmp_path / "r", resume=True)
    # the device is not part of the setting: a run may move between machines
    assert train_run(RunConfig(**{**cfg.__dict__, "device": "cpu", "checkpoint_every": 5.0}), data, tmp_path / "r",
                     resume=True).status == "finished"
    (tmp_path / "r" / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: the checkpoint cannot be read .*delete it to restart"):
        train_run(cfg, data, tmp_path / "r", resume=True)


def test_a_corrupt_run_json_never_blocks_the_others_and_settings_never_mix(tmp_path):
    from rfdnn_bridge.experiments.report import load_runs

    root = tmp_path / "runs"
    for i, (method, seed) in enumerate([("clipped", 0), ("clipped", 1), ("rfdnn", 0), ("rfdnn", 1)]):
        (root / method / f"seed{seed}").mkdir(parents=True)
        (root / method / f"seed{seed}" / "run.json").write_text(json.dumps(_fake_run(method, seed, 0.5 + 0.01 * i)))
    (root / "reste" / "seed0").mkdir(parents=True)
    (root / "reste" / "seed0" / "run.json").write_text('{"config": {"method": "reste"')  # cut short by a kill
    with pytest.warns(UserWarning, match=r"reste/seed0/run\.json: skipped, not a readable run\.json"):
        runs = load_runs(root)
    assert sorted((r["config"]["method"], r["config"]["seed"]) for r in runs) == [
        ("clipped", 0), ("clipped", 1), ("rfdnn", 0), ("rfdnn", 1)]
    with pytest.warns(UserWarning):
        assert main(["compare", "--collect", str(root), "--reference", "clipped"]) == 0
    stale = _fake_run("rfdnn", 2, 0.9)
    stale["config"]["lr"] = 0.5
    (root / "rfdnn" / "seed2").mkdir()
    (root / "rfdnn" / "seed2" / "run.json").write_text(json.dumps(stale))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"different settings \(lr=0\.05 vs 0\.5"):
        load_runs(root)


def test_did_not_train_follows_the_accuracy_not_a_loss_rule_that_contradicts_it():
    from rfdnn_bridge.experiments.report import verdict

    runs = []
    for seed in range(3):
        high_loss = _fake_run("rfdnn", seed, 0.93 + 0.001 * seed)
        high_loss["train_loss"] = [1.6]  # e.g. the loss of a smoothed forward; the accuracy says it trained
        runs += [high_loss, _fake_run("clipped", seed, 0.92 - 0.001 * seed), _fake_run("stuck", seed, 0.11)]
    line = next(v for v in verdict(runs, "rfdnn") if v.startswith("Did not train"))
    assert "stuck" in line and "rfdnn" not in line.split(":")[1].split("—")[0] and "clipped" not in line
    assert "20.00 % for 10 classes" in line


def test_workers_die_with_a_killed_parent(tmp_path):
    """SIGKILL of `rfdnn compare --jobs 2` (no handler can run): its workers notice, checkpoint
    their runs and exit instead of training on as orphans writing into --out."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    out = tmp_path / "c"
    cmd = [sys.executable, "-m", "rfdnn_bridge", "compare", "--methods", "clipped,identity,approxsign", "--seeds", "1",
           "--epochs", "500", "--out", str(out), "--no-progress", "--device", "cpu", "--jobs", "2", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(out.rglob("checkpoint.pt"))) < 2:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.1)

    def children(pid: int) -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
        return found

    workers = children(proc.pid)
    assert workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [w for w in alive if Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text()
                 .rsplit(")", 1)[1].split()[0]]
    assert not alive, f"orphan workers still running: {alive}"
    runs = [json.loads(p.read_text()) for p in out.rglob("run.json")]
    assert runs and all(r["status"] == "interrupted" for r in runs)  # each checkpointed its run on the way out


def test_p_values_and_holm_adjustment():
    from scipy import stats

    from rfdnn_bridge.experiments.report import holm, std_ratio

    rng = np.random.default_rng(3)
    a = {s: float(v) for s, v in enumerate(0.8 + 0.01 * rng.standard_normal(12))}
    b = {s: float(v) for s, v in enumerate(0.79 + 0.01 * rng.standard_normal(12))}
    d = paired_difference(a, b)
    ref = stats.ttest_rel([a[s] for s in range(12)], [b[s] for s in range(12)])
    assert d["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    # Holm by hand: p = (0.01, 0.04, 0.03, 0.5) -> sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.09, max(0.09, 0.08), 0.5
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0]) and holm([]) == []
    q = std_ratio(a, b)
    assert 1 / 2000 <= q["p"] <= 1.0
    same = paired_difference({0: 0.5, 1: 0.6}, {0: 0.4, 1: 0.5})  # the same difference on every seed
    assert same["p"] == 0.0


def test_verdicts_are_holm_adjusted_and_the_page_opens_with_the_claims(tmp_path):
    """With 12 methods a difference that is significant alone (p ≈ 0.02) is not after Holm's
    adjustment; the page opens with one sentence per claim computed from the adjusted tests."""
    from rfdnn_bridge.experiments.report import claims, summarize, verdict

    rng = np.random.default_rng(0)
    runs = []
    base = 0.90 + 0.004 * rng.standard_normal(10)
    for m in range(12):
        shift = -0.002 if m == 0 else (-0.03 if m == 1 else 0.0)  # m0: borderline, m1: clearly worse
        for seed in range(10):
            noise = 0.004 * rng.standard_normal()
            runs.append(_fake_run(f"m{m}", seed, float(base[seed] + shift + noise)))
    runs += [_fake_run("rfdnn", seed, float(base[seed])) for seed in range(10)]
    rows = {r["method"]: r for r in summarize(runs, "rfdnn")}
    assert rows["m0"]["diff"]["p"] < 0.05 < rows["m0"]["diff"]["p_holm"]  # significant only unadjusted
    assert rows["m1"]["diff"]["p_holm"] < 0.05
    line = verdict(runs, "rfdnn")[0]
    assert "significantly better than 1 method(s) (m1)" in line and "Holm-adjusted over the 12 comparisons" in line
    raw = sum(r["diff"]["p"] < 0.05 and r["diff"]["mean"] < 0 for m, r in rows.items() if m != "rfdnn")
    assert raw >= 2 and f"unadjusted: better than {raw}," in line
    first, second = claims([("Fake", runs)], "rfdnn")
    assert first.startswith("Claim 1") and "**not supported**" in first and "in 0 of 1 settings" in first
    assert "Fake: ahead of 1, behind 0 of 12" in first
    strong = [r for r in runs if r["config"]["method"] in ("rfdnn", "m1")]  # ahead of the only other method
    assert "**supported**" in claims([("Fake", strong)], "rfdnn")[0]
    assert "**partly supported**" in claims([("A", strong), ("B", runs)], "rfdnn")[0]
    for seed in range(10):
        (tmp_path / "runs" / "m" / f"seed{seed}").mkdir(parents=True)
    for run in runs:
        d = tmp_path / "runs" / run["config"]["method"] / f"seed{run['config']['seed']}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "run.json").write_text(json.dumps(run))
    assert main(["report", "Fake=" + str(tmp_path / "runs"), "--out", str(tmp_path / "results.md")]) == 0
    text = (tmp_path / "results.md").read_text()
    assert text.index("## The paper's claims") < text.index("## Overview")
    assert "| p Holm |" in text


@pytest.mark.parametrize("n_methods", [3, 14])
def test_plots_are_readable_with_many_methods(tmp_path, n_methods):
    import matplotlib.image as mpimg

    from rfdnn_bridge.experiments.report import method_styles, plot_runs
    from rfdnn_bridge.experiments.train import METHODS

    names = [m for m in METHODS if m != "rfdnn"][: n_methods - 1] + ["rfdnn"]
    rng = np.random.default_rng(1)
    runs = []
    for i, m in enumerate(names):
        for seed in range(4):
            run = _fake_run(m, seed, 0.0)
            acc = 0.10 if m == names[0] else 0.85 + 0.005 * i
            run["test_accuracy"] = list(np.minimum(1, acc * (1 - np.exp(-np.arange(1, 9) / 2)) + 0.01 * rng.random(8)))
            runs.append(run)
    paths = plot_runs(runs, tmp_path)
    assert [p.name for p in paths] == ["learning_curves.png", "final_accuracy.png"]
    h, w = mpimg.imread(paths[0]).shape[:2]
    if n_methods > 6:
        assert h > 500  # small multiples: a grid of panels, not 14 bands in one
    assert all(p.stat().st_size > 5000 for p in paths)
    # one style per method, the same whatever else is in the report; the reference in black
    few, many = method_styles(["clipped", "rfdnn"]), method_styles(list(METHODS))
    assert few["clipped"] == many["clipped"] and few["rfdnn"]["color"] == "black"
    styles = [(tuple(v["color"]), v["marker"]) for k, v in many.items() if k != "rfdnn"]
    assert len(set(styles)) == len(styles)


def test_compare_quick_is_a_small_comparison_and_options_win(tmp_path):
    from rfdnn_bridge.cli import QUICK

    out = tmp_path / "q"
    assert main(["compare", "--quick", "--methods", "clipped", "--only", "seed=0", "--out", str(out), "--no-progress",
                 "--device", "cpu", "--jobs", "1", "--epochs", "1"]) == 0
    cfg = json.loads((out / "clipped" / "seed0" / "run.json").read_text())["config"]
    assert cfg["epochs"] == 1 and cfg["model"] == QUICK["model"]  # --epochs given: it wins over --quick's
    # seed 3 is outside --quick's seeds 0..2: the selection is empty, a usage error
    assert main(["compare", "--quick", "--methods", "clipped", "--only", f"seed={QUICK['seeds']}", "--out", str(out),
                 "--no-progress"]) == 2


def test_validation_split_holds_out_part_of_the_training_set_and_never_the_test_set(digits):
    from rfdnn_bridge.experiments.train import validation_split

    v = validation_split(digits, 0.2, seed=0)
    n = len(digits.y_train)
    assert len(v.y_test) == pytest.approx(0.2 * n, abs=10) and len(v.y_train) + len(v.y_test) == n
    rows = lambda t: {bytes(r) for r in t.flatten(1).numpy()}  # noqa: E731
    assert rows(v.x_test) <= rows(digits.x_train) and not rows(v.x_test) & rows(v.x_train)
    assert not rows(v.x_test) & rows(digits.x_test)  # the test set is not looked at
    assert np.bincount(v.y_test.numpy()).min() > 0  # stratified
    assert torch.equal(validation_split(digits, 0.2, seed=0).x_test, v.x_test)
    with pytest.raises(ValueError, match="validation must be a fraction"):
        RunConfig(validation=1.0)


def test_recipes_give_a_method_its_own_options_under_its_name(tmp_path, capsys):
    recipes = tmp_path / "recipes.json"
    recipes.write_text(json.dumps({"clipped": {"c": 0.5}}))
    out = tmp_path / "r"
    assert main(["compare", "--methods", "clipped,identity", "--seeds", "2", "--epochs", "1", "--out", str(out),
                 "--no-progress", "--device", "cpu", "--jobs", "1", "--recipes", str(recipes),
                 "--reference", "identity", "--model", "mlp"]) == 0
    cfg = json.loads((out / "clipped" / "seed0" / "run.json").read_text())["config"]
    assert cfg["method"] == "clipped" and cfg["method_options"] == {"c": 0.5}
    assert "Recipes of their own: `clipped`: c=0.5." in (out / "summary.md").read_text()
    capsys.readouterr()
    recipes.write_text(json.dumps({"clipped": {"cc": 0.5}}))
    assert main(["compare", "--methods", "clipped", "--out", str(out), "--recipes", str(recipes)]) == 2
    assert "unknown option(s) ['cc']" in capsys.readouterr().err
    recipes.write_text(json.dumps({"reste": {"o": 2.0}}))
    assert main(["compare", "--methods", "clipped", "--out", str(out), "--recipes", str(recipes)]) == 2
    assert "not among --methods" in capsys.readouterr().err
