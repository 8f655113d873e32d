"""The package's imports run one way: every module imports on its own in any order, the
internal import graph (module- and function-level imports alike) has no cycle, and a
function-level import of a drbn module is rare and says why on its line."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "drbn"


def module_names() -> list[str]:
    return sorted("drbn" if p.stem == "__init__" else f"drbn.{p.stem}"
                  for p in PACKAGE.glob("*.py") if p.stem != "__main__")


def source_of(module: str) -> Path:
    return PACKAGE / ("__init__.py" if module == "drbn" else f"{module.split('.', 1)[1]}.py")


def is_main_guard(node: ast.AST) -> bool:
    """``if __name__ == "__main__":``: runs only when the file is the program (module
    ``__main__``, as in ``python -m drbn.reproduce``), so it is no edge of the package's graph."""
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and any(isinstance(c, ast.Constant) and c.value == "__main__"
                                                   for c in test.comparators))


def drbn_imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported drbn module, line, inside a function) for every import in ``module``."""
    known = set(module_names())
    found: list[tuple[str, int, bool]] = []

    def targets(node) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names if a.name == "drbn" or a.name.startswith("drbn.")]
        if node.level:  # relative: every module here sits directly in the package
            base = "drbn" + (f".{node.module}" if node.module else "")
        elif node.module and (node.module == "drbn" or node.module.startswith("drbn.")):
            base = node.module
        else:
            return []
        if base == "drbn":  # from . import viz: a module if one has that name, else the package
            return [f"drbn.{a.name}" if f"drbn.{a.name}" in known else "drbn" for a in node.names]
        return [base]

    def visit(node, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if is_main_guard(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((t, child.lineno, in_function) for t in targets(child))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(source_of(module).read_text()), False)
    return found


def import_graph() -> dict[str, set[str]]:
    return {m: {t for t, _, _ in drbn_imports(m) if t != m} for m in module_names()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search with three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


def test_the_graph_reads_every_kind_of_import(tmp_path, monkeypatch):
    (tmp_path / "__init__.py").write_text("from .b import x\n")
    (tmp_path / "a.py").write_text("from . import b\nimport drbn.c\n\ndef f():\n    from .c import y  # why\n"
                                   "\nif __name__ == '__main__':\n    from drbn.b import z\n")
    (tmp_path / "b.py").write_text("")
    (tmp_path / "c.py").write_text("from drbn import a\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    assert drbn_imports("drbn.a") == [("drbn.b", 1, False), ("drbn.c", 2, False), ("drbn.c", 5, True)]
    assert import_graph() == {"drbn": {"drbn.b"}, "drbn.a": {"drbn.b", "drbn.c"}, "drbn.b": set(),
                              "drbn.c": {"drbn.a"}}
    assert find_cycle(import_graph()) == ["drbn.a", "drbn.c", "drbn.a"]


def test_the_package_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 15
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_function_level_imports_of_drbn_modules_say_why():
    """Allowed only to keep a genuine optional dependency out of a plain import; the line
    carries a comment saying which."""
    unexplained = []
    for module in module_names():
        lines = source_of(module).read_text().splitlines()
        for target, line, in_function in drbn_imports(module):
            if in_function and "#" not in lines[line - 1]:
                unexplained.append(f"{module}:{line} imports {target} inside a function")
    assert not unexplained, "\n".join(unexplained)


def test_every_module_imports_first_in_a_fresh_process():
    """Each module imported first (the package's other modules cleared), then all the rest:
    no import works only because another module happened to be imported before it."""
    names = module_names()
    script = f"""
import importlib, sys
names = {names!r}
for first in names:
    for loaded in [m for m in sys.modules if m == "drbn" or m.startswith("drbn.")]:
        del sys.modules[loaded]
    for name in [first] + [n for n in reversed(names) if n != first]:
        try:
            importlib.import_module(name)
        except Exception as exc:
            sys.exit(f"import {{name}} (after {{first}} first) failed: {{type(exc).__name__}}: {{exc}}")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_module_opens_with_what_it_holds_and_its_notebook():
    """The docstring's opening sentence (its first paragraph) names the notebook that introduces it."""
    missing = []
    for module in module_names():
        docstring = ast.get_docstring(ast.parse(source_of(module).read_text()), clean=False) or ""
        opening = docstring.split("\n\n")[0]
        if "notebooks/" not in opening:
            missing.append(f"{module}: {opening[:80]!r}")
    assert not missing, "\n".join(missing)
