"""Sphinx configuration (built with warnings as errors by tests/test_docs.py)."""

project = "lnegeom"
author = "the lnegeom team"
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]
myst_enable_extensions = ["dollarmath"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
html_theme = "furo"
autodoc_member_order = "bysource"
autodoc_typehints = "none"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
suppress_warnings = ["myst.header"]


def _escape_bars(app, what, name, obj, options, lines):
    """Docstrings write norms as |x| (plain-text math); in reST a bar starts a substitution."""
    for i, line in enumerate(lines):
        lines[i] = line.replace("|", r"\|")


def setup(app):
    app.connect("autodoc-process-docstring", _escape_bars)
