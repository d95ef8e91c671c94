"""The layout of kit/: imports run one way (no cycle, counting imports inside functions), and every module says what it does."""

import ast
from pathlib import Path

KIT = Path(__file__).resolve().parents[1] / "kit"


def module_name(path: Path, root: Path = KIT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = KIT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every import statement, at any depth (inside functions too), except under `if TYPE_CHECKING:`."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        for child in ast.iter_child_nodes(node):
            if not _type_checking_only(child):
                todo.append(child)


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The kit modules `name` imports: `from kit.a import b` counts as kit.a.b when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        found.update(t for t in targets if t in known and t != name)
    return found


def import_graph(root: Path = KIT) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_kit_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_kit_module_opens_with_a_one_line_docstring():
    lacking = []
    for path in modules().values():
        doc = ast.get_docstring(ast.parse(path.read_text()), clean=False)
        lines = doc.splitlines() if doc else []
        first = lines[0].strip() if lines else ""
        if not first or not first.endswith(".") or (len(lines) > 1 and lines[1].strip()):
            lacking.append(f"{path.relative_to(KIT.parent)}: {first or 'no docstring'}")
    assert not lacking, "modules without a one-line docstring (one sentence ending in a period, then a blank line):\n" + "\n".join(lacking)


def test_a_cycle_inside_a_function_is_found_and_named(tmp_path):
    root = tmp_path / "kit"
    (root / "push").mkdir(parents=True)
    (root / "__init__.py").write_text('"""Kit."""\n')
    (root / "push" / "__init__.py").write_text('"""Routes."""\n\ndef run():\n    from kit.push import api\n')
    (root / "push" / "api.py").write_text('"""Api."""\n\nfrom kit import push\n')
    cycle = find_cycle(import_graph(root))
    assert cycle == ["kit.push", "kit.push.api", "kit.push"]


# Floors, bottom to top: a module imports only from its own room (kit/<room>/) or from a lower floor.
FLOORS = [
    ("kit", "kit.errors", "kit.checks", "kit.redact", "kit.files"),
    ("kit.urls",),
    ("kit.settings",),
    ("kit.project", "kit.statements", "kit.tls"),
    ("kit.db", "kit.process"),
    ("kit.migrations", "kit.cloud"),
    ("kit.schema", "kit.push", "kit.local", "kit.init"),
    ("kit.smoke", "kit.backup"),
    ("kit.rollback",),
    ("kit.deploy",),
    ("kit.cli",),
    ("kit.__main__",),
]
# Imports that run up a floor, each with its reason; the list only shrinks.
UPWARD = {
    ("kit.schema.verify", "kit.backup.manifest"): "kit verify --backup compares the catalog with the one a backup recorded",
}


def room(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def floor(module: str) -> int:
    for level, rooms in enumerate(FLOORS):
        if room(module) in rooms:
            return level
    raise AssertionError(f"{module} is on no floor: add its room to FLOORS in tests/test_layout.py")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if room(a) != room(b) and floor(b) >= floor(a) and (a, b) not in UPWARD)


def test_imports_run_down_the_floors():
    found = upward_imports(import_graph())
    assert not found, "imports that run up (or across) a floor:\n" + "\n".join(found)


def test_no_test_module_imports_another():
    """Helpers that more than one test module uses live in tests/helpers.py (fixtures in conftest.py)."""
    tests = Path(__file__).resolve().parent
    found = []
    for path in sorted(tests.glob("*.py")):
        for node in _imports(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.module == "tests":
                names = [f"tests.{a.name}" for a in node.names]
            found += [f"{path.name} -> {n}" for n in names
                      if n.startswith("tests.test_") or n == "tests.conftest"]
    assert not found, "test modules that import another test module or conftest:\n" + "\n".join(found)
