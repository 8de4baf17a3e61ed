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
    assert "no-such-check" in capsys.readouterr().out


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
