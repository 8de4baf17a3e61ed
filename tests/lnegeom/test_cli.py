"""``lnegeom validate``: report files, exit status, selection, failure reporting."""

import json
import subprocess
import sys

import pytest

from lnegeom.cli import main
from lnegeom.validate import REGISTRY, CheckResult
from lnegeom.validate.base import _Entry


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    rc = main(["validate", "--quick", "--no-progress", "--out", str(out)])
    return rc, out


def test_quick_validate_writes_report_and_passes(quick_report):
    rc, out = quick_report
    data = json.loads((out / "report.json").read_text())
    failed = [c["id"] for c in data["checks"] if not c["passed"]]
    assert rc == 0, f"failed checks: {failed}"
    assert data["meta"]["passed"] is True
    assert {c["id"] for c in data["checks"]} == set(REGISTRY)
    for c in data["checks"]:
        assert c["measured"] and c["expected"], c["id"]
        for p in c["plots"]:
            assert (out / p).stat().st_size > 1000, p
    md = (out / "report.md").read_text()
    assert "| check | result |" in md and "plots/" in md
    assert len(list((out / "plots").glob("*.png"))) >= 2


def test_failing_check_gives_exit_status_1(tmp_path, monkeypatch):
    def bad(ctx):
        return CheckResult("always-fails", "always fails", "test", False, {"x": 1.0}, {"x": 0.0}, "x == 0")

    def boom(ctx):
        raise RuntimeError("broken check")

    monkeypatch.setitem(REGISTRY, "always-fails", _Entry("always-fails", "always fails", "test", bad))
    monkeypatch.setitem(REGISTRY, "raises", _Entry("raises", "raises", "test", boom))
    rc = main(["validate", "--only", "test", "--no-progress", "--out", str(tmp_path)])
    assert rc == 1
    data = json.loads((tmp_path / "report.json").read_text())
    by_id = {c["id"]: c for c in data["checks"]}
    assert set(by_id) == {"always-fails", "raises"}
    assert "RuntimeError: broken check" in by_id["raises"]["error"]


def test_unknown_check_is_a_usage_error(tmp_path, capsys):
    assert main(["validate", "--only", "no-such-check", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no-such-check" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("only", [" ", ",", " , "])
def test_an_empty_selection_runs_nothing_and_does_not_pass(tmp_path, capsys, only):
    assert main(["validate", "--only", only, "--out", str(tmp_path / "r")]) == 2
    captured = capsys.readouterr()
    assert "names no check" in captured.err and "passed" not in captured.out
    assert not (tmp_path / "r").exists()


def test_out_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["validate", "--only", "identities", "--out", str(afile)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--seed", "x"])
    assert exc.value.code == 2


def test_module_entry_point_lists_checks():
    proc = subprocess.run([sys.executable, "-m", "lnegeom", "validate", "--list"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "lne-taylor" in proc.stdout


def test_rfdnn_study_command_writes_its_report(tmp_path, capsys):
    from rfdnn_bridge.cli import main as rfdnn_main

    out = tmp_path / "sbn"
    assert rfdnn_main(["study", "sbn", "--quick", "--no-progress", "--out", str(out)]) == 0
    assert {"report.json", "report.md", "gradients.png", "mirror.png"} <= {p.name for p in out.iterdir()}
    assert "wrote" in capsys.readouterr().out


def test_unknown_study_is_named():
    import pytest as _pytest

    from rfdnn_bridge.studies import run_study

    with _pytest.raises(ValueError, match="unknown study 'foo'"):
        run_study("foo", "unused")


def test_ctrl_c_keeps_the_previous_report_and_writes_a_partial_one_marked_incomplete(tmp_path, monkeypatch, capsys):
    def ok(ctx):
        import matplotlib.pyplot as plt

        fig = plt.figure()
        fig.savefig(ctx.plot_path("ok.png"))
        plt.close(fig)
        return CheckResult("ok", "ok", "test", True, {"x": 0.0}, {"x": 0.0}, "x == 0", plots=["plots/ok.png"])

    def interrupted(ctx):
        raise KeyboardInterrupt

    monkeypatch.setitem(REGISTRY, "ok", _Entry("ok", "ok", "test", ok))
    assert main(["validate", "--only", "ok", "--no-progress", "--out", str(tmp_path)]) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "report.json", tmp_path / "report.md")}
    monkeypatch.setitem(REGISTRY, "stop", _Entry("stop", "stop", "test", interrupted))
    monkeypatch.setitem(REGISTRY, "never", _Entry("never", "never", "test", ok))
    rc = main(["validate", "--only", "ok,stop,never", "--no-progress", "--out", str(tmp_path)])
    assert rc == 130  # not swallowed: the conventional status of a Ctrl-C
    assert "interrupted" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in (tmp_path / "report.json", tmp_path / "report.md")} == before
    partial = json.loads((tmp_path / "incomplete" / "report.json").read_text())
    assert partial["meta"]["complete"] is False and partial["meta"]["passed"] is False
    assert [c["id"] for c in partial["checks"]] == ["ok"] and partial["meta"]["not_run"] == ["stop", "never"]
    assert "INCOMPLETE" in (tmp_path / "incomplete" / "report.md").read_text()
    assert (tmp_path / "incomplete" / "plots" / "ok.png").exists()
    # the next whole run replaces the report and removes the stale partial one; no staging folder is left
    assert main(["validate", "--only", "ok", "--no-progress", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots", "report.json", "report.md"]
