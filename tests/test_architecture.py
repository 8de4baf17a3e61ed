"""docs/architecture.md: the layers it declares hold in the code (tools/architecture.py checks them)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("architecture", ROOT / "tools" / "architecture.py")
assert _spec is not None and _spec.loader is not None
architecture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(architecture)


def test_the_code_keeps_the_layers_of_the_architecture_page():
    assert architecture.problems() == []


def _tree(tmp_path: Path, files: dict[str, str], table: str) -> tuple[Path, Path]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    doc = tmp_path / "architecture.md"
    doc.write_text("| layer | modules |\n|---|---|\n" + table)
    return tmp_path, doc


def test_upward_imports_cycles_unplaced_modules_and_stale_rows_are_found(tmp_path):
    root, doc = _tree(tmp_path, {
        "lnegeom/__init__.py": "from . import low, high\n",
        "lnegeom/low.py": "def f():\n    from .sub.b import g  # lazy, still an import\n",
        "lnegeom/high.py": "from lnegeom.low import f\n",
        "lnegeom/stray.py": "",
        "lnegeom/sub/__init__.py": "",
        "lnegeom/sub/a.py": "from . import b\n",
        "lnegeom/sub/b.py": "from .a import x\n",
        "rfdnn_bridge/__init__.py": "",
    }, "| base | `lnegeom.low`, `lnegeom.gone` |\n| top | `lnegeom.high`, `lnegeom.sub.*` |\n")
    found = architecture.problems(root, doc)
    assert "lnegeom.stray is in no layer of architecture.md: add it to the table" in found
    assert any(p.startswith("lnegeom.low (layer 'base') imports lnegeom.sub.b from the higher layer 'top'")
               for p in found)
    assert any(p.startswith("import cycle:") and "lnegeom.sub.a" in p for p in found)
    assert any(p.startswith("`lnegeom.gone` (layer 'base') names no module") for p in found)
    assert len(found) == 4, found


def test_the_picture_is_drawn(tmp_path):
    path = architecture.draw(tmp_path / "modules.png")
    assert path.stat().st_size > 10_000
