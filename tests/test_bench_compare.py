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


def _tree(root: Path, seconds: float) -> Path:
    (root / "benchmarks").mkdir(parents=True)
    (root / "benchmarks" / "bench_fake.py").write_text(
        f"print('step alone {1e3 * seconds:.1f} ms, total {seconds:.2f} s')\nprint('threshold < 9 s')\n")
    return root


def test_compare_prints_after_over_before(tmp_path, capsys):
    ratios = compare.compare("fake", _tree(tmp_path / "a", 2.0), _tree(tmp_path / "b", 3.0), [], rounds=2)
    assert ratios == pytest.approx([1.5, 1.5])
    text = capsys.readouterr().out
    assert "step alone # ms, total # s" in text and "1.500x" in text and "geometric mean over 2" in text


def test_an_unknown_revision_is_named(tmp_path):
    with pytest.raises(SystemExit, match="no-such-revision"):
        compare.export("no-such-revision", tmp_path)
