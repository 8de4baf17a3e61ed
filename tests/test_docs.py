"""The documentation builds with warnings as errors, and its code examples run."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    from sphinx.cmd.build import build_main

    rc = build_main(["-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path / "html")])
    assert rc == 0, "sphinx-build -W failed: see the warnings above"


@pytest.mark.parametrize("page", [p for p in PAGES if _python_blocks(p.read_text())], ids=lambda p: str(p.relative_to(DOCS)))
def test_docs_examples_run(page, monkeypatch, tmp_path):
    """Every ```python block of a page runs, in order, in one namespace (as a reader would paste them)."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for i, block in enumerate(_python_blocks(page.read_text())):
        code = compile(block, f"{page.name}[block {i}]", "exec")
        exec(code, namespace)
