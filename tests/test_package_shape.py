"""The package's shape: no import circles, no private names across modules, and shared code
(pipeline, engine, tools) that never names a method, space or searcher."""
import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "nasbench"


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _import_target(node: ast.ImportFrom, package: str) -> str:
    """The absolute module a ``from ... import`` names, relative imports resolved against ``package``."""
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _top_level_imports(path: Path):
    """``(module imported, names)`` of the imports at module level (not inside functions)."""
    tree = ast.parse(path.read_text())
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            target = _import_target(node, package)
            yield target, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []


def _graph():
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for mod, path in modules.items():
        deps = set()
        for target, names in _top_level_imports(path):
            if not target.startswith("nasbench"):
                continue
            for n in names:  # "from .x import y" where y is a submodule
                if f"{target}.{n}" in modules:
                    deps.add(f"{target}.{n}")
            if target in modules:
                deps.add(target)
        graph[mod] = deps - {mod}
    return graph


def test_no_import_circles_between_modules():
    """Module-level imports form no cycle other than a package importing its own submodules
    (whose relative imports of siblings go through the package ``__init__``)."""
    graph = _graph()

    def parent_pkg(m):
        return m.rsplit(".", 1)[0]

    cycles = []
    state = {}

    def visit(m, stack):
        state[m] = 1
        for d in graph.get(m, ()):
            # a module's import of its own package's __init__ (or the reverse) is how packages work
            if d == parent_pkg(m) or m == parent_pkg(d):
                continue
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d] if d in stack else [m, d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_no_private_names_imported_across_modules():
    bad = []
    for path in list(PKG.rglob("*.py")) + list((REPO / "tools").glob("*.py")):
        for target, names in _top_level_imports(path):
            if target.startswith("nasbench"):
                bad += [f"{path.relative_to(REPO)}: {target}.{n}" for n in names
                        if n.startswith("_") and n != "__version__"]
        for node in ast.walk(ast.parse(path.read_text())):  # function-level imports too
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("nasbench")):
                bad += [f"{path.relative_to(REPO)}: {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_") and a.name != "__version__"]
    assert not bad, bad


def test_shared_code_never_names_a_method_or_space():
    """The workflow and the engine ask the protocols; no registered type name appears in them."""
    from nasbench.registry import TYPED_SECTIONS, load_registrations
    load_registrations()
    names = {n for reg in TYPED_SECTIONS.values() for n in reg.names()} - {"random", "accuracy"}
    files = list((PKG / "pipeline").glob("*.py")) + list((PKG / "engine").glob("*.py"))
    hits = []
    for path in files:
        text = path.read_text()
        code = "\n".join(line.split("#")[0] for line in text.splitlines())
        for n in sorted(names):
            for m in re.finditer(rf"[\"']{re.escape(n)}[\"']", code):
                hits.append(f"{path.relative_to(REPO)}: {n!r}")
        if re.search(r"family\s*==|\.family\b", code):
            hits.append(f"{path.relative_to(REPO)}: space family")
    assert not hits, hits


@pytest.mark.parametrize("path", sorted((PKG / "engine").glob("*.py")) + sorted((PKG / "pipeline").glob("*.py")),
                         ids=lambda p: p.name)
def test_workflow_functions_are_short(path):
    """No function of the engine or the pipeline is longer than 65 lines (the trainer is a short loop)."""
    long = [f"{n.name}: {n.end_lineno - n.lineno + 1}" for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 65]
    assert not long, long


def _imported_modules(path: Path):
    """Every ``nasbench`` module ``path`` imports (module level and inside functions), resolved."""
    mod = _module_name(path) if PKG in path.parents else "tools." + path.stem
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            target = _import_target(node, package)
            yield target
            yield from (f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_shared_code_imports_no_method_module():
    """tools/, the pipeline and the engine reach a method only through the registries and the
    protocols: they import ``nasbench.algorithms`` (the package, its ``base`` and the
    standard retraining ``supervised``), never a method's own module such as
    ``nasbench.algorithms.bossnas_ratings``. A tool named after its method
    (``tools/bossnas_rating.py``) is that method's own file and exempt."""
    from nasbench.registry import ALGORITHMS, load_registrations
    load_registrations()
    allowed = {"nasbench.algorithms", "nasbench.algorithms.base", "nasbench.algorithms.supervised"}
    submodules = {_module_name(p) for p in (PKG / "algorithms").glob("*.py")}
    methods = set(ALGORITHMS.names())
    files = [p for p in (REPO / "tools").glob("*.py") if not any(p.stem.startswith(m) for m in methods)]
    files += list((PKG / "pipeline").glob("*.py")) + list((PKG / "engine").glob("*.py"))
    hits = sorted({f"{p.relative_to(REPO)}: {t}" for p in files for t in _imported_modules(p)
                   if t in submodules and t not in allowed})
    assert not hits, hits
