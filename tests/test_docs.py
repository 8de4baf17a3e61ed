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


@pytest.mark.parametrize("page", [p for p in PAGES if _python_blocks(p.read_text())],
                         ids=lambda p: str(p.relative_to(DOCS)))
def test_docs_examples_run(page, monkeypatch, tmp_path):
    """Every ```python block of a page runs, in order, in one namespace (as a reader would paste them)."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for i, block in enumerate(_python_blocks(page.read_text())):
        code = compile(block, f"{page.name}[block {i}]", "exec")
        exec(code, namespace)


ROOT = DOCS.parent


def _public_modules() -> list[str]:
    names = []
    for package in ("lnegeom", "rfdnn_bridge"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if any(p.startswith("_") and p != "__init__" for p in parts) or parts[-1] == "__main__":
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_public_module_has_an_api_page():
    text = "\n".join(p.read_text() for p in (DOCS / "api").glob("*.md"))
    documented = set(re.findall(r"^\.\. automodule:: ([\w.]+)", text, flags=re.M))
    missing = [m for m in _public_modules() if m not in documented]
    assert not missing, f"public modules without an automodule in docs/api/: {missing}"


def test_references_stay_inside_the_repository():
    """Docstrings and pages cite docs/math.md and the docs' estimator table, never a file outside
    the repository or an issue of the tracker."""
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    pattern = re.compile(r"(?<![\w/])(MATH|ESTIMATORS|ARCHITECTURE)\.md|shared/spec|\b[Ii]ssues? #?\d+")
    bad = []
    for name in files:
        if name.endswith((".py", ".md", ".ipynb", ".toml", ".sh")) and name != "tests/test_docs.py":
            for i, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), 1):
                if pattern.search(line):
                    bad.append(f"{name}:{i}: {line.strip()[:100]}")
    assert not bad, "references outside the repository:\n" + "\n".join(bad)
    math_page = (DOCS / "math.md").read_text()
    cited = set(re.findall(r"docs/math\.md §(\d)", "\n".join((ROOT / n).read_text(errors="replace") for n in files
                                                             if n.endswith(".py"))))
    assert cited and all(f"## §{k} " in math_page for k in cited), sorted(cited)


def test_cited_tests_exist():
    """Every ``tests/<path>.py`` (and ``::test_name``) cited in the repository names a file and a test
    that exist, so that a moved or renamed test cannot leave its citations behind."""
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    missing = []
    for name in files:
        if not name.endswith((".py", ".md", ".ipynb", ".toml", ".sh")):
            continue
        text = (ROOT / name).read_text(errors="replace")
        for path, test in re.findall(r"(?<![\w/])(tests/[\w/]+\.py)(?:::(\w+))?", text):
            target = ROOT / path
            if not target.is_file():
                missing.append(f"{name}: {path} does not exist")
            elif test and not re.search(rf"^(?:async )?def {test}\b", target.read_text(), flags=re.M):
                missing.append(f"{name}: {path} has no {test}")
    assert not missing, "\n".join(sorted(set(missing)))
