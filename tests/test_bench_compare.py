"""benchmarks/compare.py: before/after ratios of benchmark scripts, lines paired by their label."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_compare", ROOT / "benchmarks" / "compare.py")
assert _spec is not None and _spec.loader is not None
compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare)


def test_durations_are_keyed_by_label_and_bounds_are_not_measurements():
    out = "targets: ETD < 5 s, 3-D ≤ 60 s\n2-D 64² etd 0.65 s err 1.2e-08\nrow 12.5 ms  3 µs\nrow 1,234.5 s\nrow 2 s"
    found = compare.durations(out)
    assert found == {("#-D #² etd # s err #", 0): [0.65], ("row # ms # µs", 0): [0.0125, 3e-06],
                     ("row # s", 0): [1234.5], ("row # s", 1): [2.0]}


def _tree(root: Path, seconds: float, script_seconds: float) -> Path:
    """A tree whose 'library' (speed.py) takes ``seconds`` and whose own script claims ``script_seconds``."""
    (root / "benchmarks").mkdir(parents=True)
    (root / "speed.py").write_text(f"SECONDS = {seconds}\n")
    (root / "benchmarks" / "bench_fake.py").write_text(
        "import speed\n"
        "print(f'step alone {1e3 * speed.SECONDS:.1f} ms, total {speed.SECONDS:.2f} s')\n"
        f"print('own script {script_seconds} s')\nprint('threshold < 9 s')\n")
    return root


def test_compare_runs_one_script_on_both_libraries(tmp_path, capsys):
    before, after = _tree(tmp_path / "a", 2.0, 5.0), _tree(tmp_path / "b", 3.0, 7.0)
    ratios = compare.compare("fake", before, after, [], rounds=2)
    assert ratios == pytest.approx([1.5, 1.5, 1.0])  # the library's times differ, the after script's 7 s twice
    text = capsys.readouterr().out
    assert "step alone # ms, total # s" in text and "1.500x" in text and "geometric mean over 3" in text
    assert compare.compare("fake", before, after, [], rounds=1, own_scripts=True) == pytest.approx([1.5, 1.5, 1.4])


def test_an_unknown_revision_is_named(tmp_path):
    with pytest.raises(SystemExit, match="no-such-revision"):
        compare.export("no-such-revision", tmp_path)
