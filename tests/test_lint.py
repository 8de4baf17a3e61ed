"""The lint and type gate, run inside the suite: ruff over the repository, mypy over the public core
modules (the ``files`` of ``[tool.mypy]`` in pyproject.toml), and no module of the packages importing a
private name of another.  ruff and mypy come with the ``dev`` extras; without them those two checks skip."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lnegeom", "rfdnn_bridge")


def _run_tool(module: str, *args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_ruff_passes():
    proc = _run_tool("ruff", "check", ".")
    assert proc.returncode == 0, f"ruff check . failed:\n{proc.stdout}\n{proc.stderr}"


def test_mypy_passes():
    proc = _run_tool("mypy")  # the files and options of [tool.mypy]; cache in .mypy_cache
    assert proc.returncode == 0, f"mypy failed:\n{proc.stdout}\n{proc.stderr}"


def _is_submodule(package: Path, name: str) -> bool:
    return (package / f"{name}.py").is_file() or (package / name / "__init__.py").is_file()


def _private_imports(path: Path, root: Path = ROOT) -> list[str]:
    """``from .x import _y`` / ``from lnegeom.x import _y`` in ``path`` (a private module itself, such
    as ``from . import _array``, and public names from it, ``from ._array import Array``, are allowed)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
        elif node.module and node.module.split(".")[0] in PACKAGES:
            base = root
        else:
            continue
        target = base.joinpath(*node.module.split(".")) if node.module else base
        for alias in node.names:
            name = alias.name
            if name.startswith("_") and not name.startswith("__") and not _is_submodule(target, name):
                found.append(f"{path.relative_to(root)}:{node.lineno}: from {'.' * node.level}"
                             f"{node.module or ''} import {name}")
    return found


def test_no_private_imports_across_modules():
    modules = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))
    assert modules
    found = [hit for p in modules for hit in _private_imports(p)]
    assert not found, "private names imported from another module (make them public or move them):\n" + "\n".join(
        found)


def test_the_private_import_check_sees_them(tmp_path):
    """The AST check itself: relative and absolute forms are caught, submodules and public names pass."""
    pkg = tmp_path / "lnegeom"
    pkg.mkdir()
    (pkg / "_helpers.py").write_text("")
    mod = pkg / "mod.py"
    mod.write_text("from ._helpers import public\nfrom . import _helpers\nfrom .flow import _hidden\n"
                   "def f():\n    from lnegeom.curvature import _inner, __version__\n")
    assert [h.split(": ", 1)[1] for h in _private_imports(mod, root=tmp_path)] == [
        "from .flow import _hidden", "from lnegeom.curvature import _inner"]
