"""mdn's import graph, read from its source: every module's imports of other mdn modules (at the top, inside
functions and for type checking alike), the floors they stack into, and any import circle.

    python scripts/import_graph.py            # modules, arrows, floors and circles
    python scripts/import_graph.py --check    # exit 1 when there is a circle

A package's own `__init__` importing its modules is not an arrow (it is the package), but for `mdn` itself, the
Python API, which stands above the jobs it calls; an arrow to a package is an arrow to its `__init__`.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the mdn package."""
    found = {}
    for path in sorted((root / "mdn").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(node: ast.AST, package: str) -> list[str]:
    """The dotted names an import statement may refer to (a module, or a name inside one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        return [f"{base}.{alias.name}" for alias in node.names] or [base]
    return []


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the mdn modules it imports."""
    known = modules(root)
    arrows: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            for target in _imported(node, package):
                while target and target not in known:  # a name inside a module: the module
                    target = target.rpartition(".")[0]
                inside = name != "mdn" and target.startswith(name + ".")  # a package's own modules
                if target and target != name and not inside:
                    arrows[name].add(target)
    return arrows


def circles(arrows: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import one another round a circle (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in arrows[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(1000, 10 * len(arrows)))
    for node in sorted(arrows):
        if node not in index:
            visit(node)
    return found


def floors(arrows: dict[str, set[str]]) -> dict[str, int]:
    """Each module's floor in a graph without circles: 0 for one that imports no mdn module, else one above the
    highest it imports."""
    floor: dict[str, int] = {}

    def of(node: str) -> int:
        if node not in floor:
            floor[node] = 1 + max((of(target) for target in arrows[node]), default=-1)
        return floor[node]

    for node in arrows:
        of(node)
    return floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when there is an import circle")
    args = parser.parse_args()
    arrows = graph()
    found = circles(arrows)
    print(f"{len(arrows)} modules, {sum(map(len, arrows.values()))} arrows")
    for group in found:
        print("circle: " + " -> ".join(group))
    if not found:
        by_floor: dict[int, list[str]] = {}
        for name, level in floors(arrows).items():
            by_floor.setdefault(level, []).append(name)
        print(f"{len(by_floor)} floors")
        if not args.check:
            for level in sorted(by_floor, reverse=True):
                print(f"  {level:2d}  {' '.join(sorted(by_floor[level]))}")
    sys.exit(1 if args.check and found else 0)


if __name__ == "__main__":
    main()
