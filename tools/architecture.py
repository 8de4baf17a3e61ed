"""The module picture of docs/architecture.md, drawn from the code's real imports, and its rules checked.

Run:  python tools/architecture.py          # check the rules, redraw docs/architecture_files/modules.png

The layers are declared once, in the table of docs/architecture.md (``| layer | modules |``, lowest
layer first; ``pkg.sub.*`` stands for a subpackage and all its modules).  The rules of that page:

* every module of ``lnegeom`` and ``rfdnn_bridge`` belongs to exactly one layer (the packages'
  ``__init__`` and ``__main__`` front doors excepted: they re-export and may import anything);
* a module imports only modules of its own layer or of layers below (data flows one way);
* the import graph between modules has no cycle;
* every name in the table is a module that exists.

``tests/test_architecture.py`` runs :func:`problems` so that the page cannot drift from the code.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lnegeom", "rfdnn_bridge")
DOC = ROOT / "docs" / "architecture.md"
PICTURE = ROOT / "docs" / "architecture_files" / "modules.png"


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file of every module of the packages (a package is named by its ``__init__``)."""
    found = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_front_door(name: str, path: Path) -> bool:
    return name in PACKAGES or path.name == "__main__.py"


def imports(root: Path = ROOT) -> set[tuple[str, str]]:
    """(importer, imported) for every import between modules of the packages, lazy imports included."""
    mods = modules(root)
    edges = set()
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                # ``from pkg import sub`` imports the submodule; ``from mod import name`` the module
                targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in mods else origin for a in node.names]
            for target in targets:
                while target and target not in mods:  # import a.b.c -> the deepest module that exists
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add((name, target))
    return edges


def declared_layers(doc: Path = DOC) -> list[tuple[str, list[str]]]:
    """``[(layer, [module patterns])]`` from the table of ``doc``, lowest layer first."""
    rows = []
    for line in doc.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) == 2 and "`" in cells[1]:
            rows.append((cells[0], re.findall(r"`([\w.*]+)`", cells[1])))
    if not rows:
        raise ValueError(f"{doc} has no layer table (rows '| layer | `module`, ... |')")
    return rows


def layer_of(layers: list[tuple[str, list[str]]], mods: dict[str, Path]) -> tuple[dict[str, int], list[str]]:
    """Each module's layer index, and the problems: a module in no layer or in two."""
    where: dict[str, int] = {}
    problems = []
    for name, path in mods.items():
        if _is_front_door(name, path):
            continue
        hits = [i for i, (_, pats) in enumerate(layers) for p in pats
                if fnmatch.fnmatchcase(name, p) or (p.endswith(".*") and name == p[:-2])]
        if not hits:
            problems.append(f"{name} is in no layer of {DOC.name}: add it to the table")
        elif len(set(hits)) > 1:
            problems.append(f"{name} is in several layers: {', '.join(layers[i][0] for i in sorted(set(hits)))}")
        else:
            where[name] = hits[0]
    return where, problems


def _cycle(edges: set[tuple[str, str]]) -> list[str]:
    """One cycle of the directed graph, as a path that ends where it starts; [] if there is none."""
    succ: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        succ.setdefault(a, []).append(b)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> list[str]:
        state[v] = 1
        stack.append(v)
        for w in succ.get(v, []):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        stack.pop()
        state[v] = 2
        return []

    for v in sorted(succ):
        if v not in state and (found := visit(v)):
            return found
    return []


def problems(root: Path = ROOT, doc: Path = DOC) -> list[str]:
    """Every breach of the page's rules, one line each (empty when the code keeps them)."""
    mods = modules(root)
    layers = declared_layers(doc)
    where, found = layer_of(layers, mods)
    for title, patterns in layers:
        for p in patterns:
            if not any(fnmatch.fnmatchcase(m, p) or (p.endswith(".*") and m == p[:-2]) for m in mods):
                found.append(f"`{p}` (layer '{title}') names no module: remove it from {doc.name}")
    edges = {(a, b) for a, b in imports(root) if a in where and b in where}
    for a, b in sorted(edges):
        if where[b] > where[a]:
            found.append(f"{a} (layer '{layers[where[a]][0]}') imports {b} from the higher layer "
                         f"'{layers[where[b]][0]}'")
    cycle = _cycle(edges)
    if cycle:
        found.append("import cycle: " + " -> ".join(cycle))
    return found


def _box(name: str, layers: list[tuple[str, list[str]]], i: int) -> str:
    """The label of a module in the picture: a subpackage declared as ``pkg.sub.*`` is one box."""
    for p in layers[i][1]:
        if p.endswith(".*") and (name == p[:-2] or name.startswith(p[:-1])):
            return p[:-2].partition(".")[2] + "/"
    return name.partition(".")[2]


def draw(path: Path = PICTURE, root: Path = ROOT, doc: Path = DOC) -> Path:
    """Draw the layers (rows, lowest at the bottom) and the imports between their modules' boxes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mods = modules(root)
    layers = declared_layers(doc)
    where, _ = layer_of(layers, mods)
    boxes: dict[str, tuple[int, str]] = {m: (i, _box(m, layers, i)) for m, i in where.items()}
    rows: list[list[str]] = [sorted({b for i, b in boxes.values() if i == k}) for k in range(len(layers))]
    width = max(len(r) for r in rows)
    pos = {(k, b): ((j + 0.5) * width / len(r), 1.6 * k) for k, r in enumerate(rows) for j, b in enumerate(r)}
    edges = {(boxes[a], boxes[b]) for a, b in imports(root) if a in boxes and b in boxes and boxes[a] != boxes[b]}
    fig, ax = plt.subplots(figsize=(2.1 * width + 3, 1.15 * len(layers) + 1))
    for k, (title, _) in enumerate(layers):
        ax.axhspan(1.6 * k - 0.55, 1.6 * k + 0.55, color="#4c72b0" if title.startswith("lnegeom") else "#dd8452",
                   alpha=0.08, lw=0)
        ax.text(-0.2, 1.6 * k, title, ha="right", va="center", fontsize=9, style="italic")
    colours = plt.get_cmap("tab20")
    sources = sorted({src for src, _ in edges})
    for src, dst in sorted(edges):  # one colour per importing box, so that crossing lines can be followed
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        ax.annotate("", xy=(x1, y1 + (0.25 if y1 < y0 else 0)), xytext=(x0, y0 - (0.25 if y1 < y0 else 0)),
                    arrowprops=dict(arrowstyle="->", color=colours(sources.index(src) % 20), lw=0.8, alpha=0.75,
                                    shrinkA=2, shrinkB=2,
                                    connectionstyle="arc3,rad=0.25" if y0 == y1 else "arc3,rad=0.08"))
    for (_, b), (x, y) in pos.items():
        ax.text(x, y, b, ha="center", va="center", fontsize=8.5, family="monospace",
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.3", lw=0.8))
    ax.set_xlim(-0.3 - 0.08 * width, width + 0.3)
    ax.set_ylim(-0.8, 1.6 * (len(layers) - 1) + 0.8)
    ax.axis("off")
    ax.set_title("lnegeom and rfdnn_bridge: modules by layer; arrows are imports (importer → imported), "
                 "always downward or within a layer", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def main() -> int:
    found = problems()
    for line in found:
        print(f"architecture: {line}", file=sys.stderr)
    print(f"drew {draw().relative_to(ROOT)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
