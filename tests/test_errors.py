"""The one error table: kit/errors.py's classes and exit codes, the README's table, and no validation by assert."""

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import kit
from kit import errors, settings as settings_mod

KIT = Path(kit.__file__).parent
ROOT = KIT.parent


def readme_exit_codes() -> list[tuple[int, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if re.match(r"\| \d+ \|", line)]
    return [(int(code), meaning.strip()) for code, meaning in rows]


def test_the_readme_exit_code_table_is_the_error_table():
    assert readme_exit_codes() == errors.exit_codes()


def every_kit_module() -> list[str]:
    names = [info.name for info in pkgutil.walk_packages(kit.__path__, "kit.") if not info.name.endswith("__main__")]
    for name in names:
        importlib.import_module(name)
    return names


def test_every_error_class_is_in_the_error_table():
    every_kit_module()
    pending, found = [errors.KitError], []
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending += cls.__subclasses__()
    assert {cls.__module__ for cls in found} == {"kit.errors"}
    assert {cls.exit_code for cls in found} <= dict(errors.exit_codes()).keys()


def test_smoke_and_branch_failures_exit_as_failed_checks():
    assert issubclass(errors.CheckError, errors.CheckFailed) and issubclass(errors.BranchFailed, errors.CheckFailed)
    assert errors.CheckError.exit_code == errors.BranchFailed.exit_code == 5


def python_files(folder):
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_assert_in_the_kit():
    found = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in python_files(KIT)
             for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assert)]
    assert found == []


def bare_exit_numbers(tree: ast.AST) -> list[int]:
    """Integer literals where an exit code goes: returned, chosen by `x if ok else 5`, or passed to Result."""
    def literal(node):
        return isinstance(node, ast.Constant) and type(node.value) is int

    lines = []
    for node in ast.walk(tree):
        returned = isinstance(node, ast.Return) and node.value is not None and literal(node.value)
        chosen = isinstance(node, ast.IfExp) and (literal(node.body) or literal(node.orelse))
        called = isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("Result", "_fail") and (
            any(literal(a) for a in node.args) or any(k.arg == "exit_code" and literal(k.value) for k in node.keywords))
        if returned or chosen or called:
            lines.append(node.lineno)
    return sorted(lines)


def test_no_bare_exit_numbers_in_the_cli():
    found = {}
    for path in python_files(KIT / "cli"):
        source = path.read_text()
        lines = bare_exit_numbers(ast.parse(source))
        lines += [source[:m.start()].count("\n") + 1 for m in re.finditer(r"(?i)\bexits? \d", source)]
        if lines:
            found[str(path.relative_to(ROOT))] = lines
    assert found == {}


def test_the_bare_number_check_finds_one():
    assert bare_exit_numbers(ast.parse("Result({}, '', 0 if ok else 5)\ndef f():\n    return 130\n")) == [1, 3]


@pytest.mark.parametrize("given, shown", [("0", "0"), ("-3", "-3"), ("soon", "'soon'")])
def test_a_connect_timeout_that_is_not_above_zero_is_a_config_error(tmp_path, given, shown):
    with pytest.raises(errors.ConfigError) as raised:
        settings_mod.load(environ={"KIT_CONNECT_TIMEOUT": given}, cwd=tmp_path)
    assert str(raised.value) == f"KIT_CONNECT_TIMEOUT must be a whole number of seconds above 0, not {shown}"
    assert raised.value.exit_code == 2


def test_a_zero_connect_timeout_is_refused_under_python_dash_o(tmp_path):
    """python -O drops assert statements; the refusal must not be one."""
    code = ("from kit import settings\n"
            "try:\n    settings.load(environ={'KIT_CONNECT_TIMEOUT': '0'}, cwd=__import__('pathlib').Path('.'))\n"
            "except settings.ConfigError as exc:\n    print(exc.exit_code, exc)\n")
    run = subprocess.run([sys.executable, "-O", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.stdout == "2 KIT_CONNECT_TIMEOUT must be a whole number of seconds above 0, not 0\n", run.stderr


# Functions that read an error's text because nothing else says what happened; each is documented and named
# for what it reads. Everywhere else, decisions use SQLSTATEs, exception types or return values.
TEXT_CLASSIFIERS = {
    ("kit/db.py", "libpq_connect_failure"): "libpq gives a failed connection no SQLSTATE, only its message",
    ("kit/push/api.py", "failed_query_message"): "the Management API gives a query's SQLSTATE only in its text",
    ("kit/push/cli.py", "read_output"): "the Supabase CLI is a child program: its output is text",
    ("kit/smoke/rest.py", "gateway_refused_key"): "the API gateway refuses a key with a message and no code",
}
TEXT_ATTRS = {"args", "message", "message_primary", "message_detail", "message_hint", "detail", "details", "hint",
              "stderr", "stdout", "output", "reason"}
MATCH_METHODS = {"startswith", "endswith", "find", "rfind", "index", "rindex", "count", "__contains__"}
REGEX_FUNCS = {"search", "match", "fullmatch", "findall", "finditer"}


class ErrorText:
    """Which names in one function hold an exception, text derived from one, or the outcome of a test of that text.

    Sources: `except ... as exc`, parameters named exc/error/err or annotated with an exception type, and
    parameters named message. A value passed through a listed classifier is that function's answer, not text.
    """

    def __init__(self, fn: ast.AST, classifiers: set[str]):
        self.classifiers = classifiers
        self.exc, self.text, self.tested = set(), set(), set()
        arguments = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        for a in arguments:
            note = ast.unparse(a.annotation) if a.annotation else ""
            if a.arg in ("exc", "error", "err") or re.search(r"Error\b|Exception\b", note):
                self.exc.add(a.arg)
            elif a.arg == "message":
                self.text.add(a.arg)
        self.exc |= {n.name for n in ast.walk(fn) if isinstance(n, ast.ExceptHandler) and n.name}
        for _ in range(4):  # names made from such names, to a fixed point
            for node in ast.walk(fn):
                for target, value in _bindings(node):
                    names = {n.id for n in _names(target)}
                    if self.tests_text(value):
                        self.tested |= names
                    elif self.is_text(value):
                        self.text |= names

    def nodes(self, node):
        """ast.walk that does not enter a call of a listed classifier."""
        todo = [node]
        while todo:
            node = todo.pop()
            yield node
            called = node.func if isinstance(node, ast.Call) else None
            if getattr(called, "id", None) in self.classifiers or getattr(called, "attr", None) in self.classifiers:
                continue
            todo += ast.iter_child_nodes(node)

    def is_exc(self, node) -> bool:
        while isinstance(node, ast.Attribute):
            node = node.value
        return isinstance(node, ast.Name) and node.id in self.exc

    def is_text(self, node) -> bool:
        for sub in self.nodes(node):
            if isinstance(sub, ast.Name) and sub.id in self.text:
                return True
            if isinstance(sub, ast.Call) and getattr(sub.func, "id", None) in ("str", "repr") and \
                    any(self.is_exc(a) for a in sub.args):
                return True
            if isinstance(sub, ast.Attribute) and sub.attr in TEXT_ATTRS and self.is_exc(sub.value):
                return True
            if isinstance(sub, ast.FormattedValue) and self.is_exc(sub.value):
                return True
        return False

    def tests_text(self, node) -> bool:
        """`"..." in text`, `text == "..."`, text.startswith/find(...), re.search(..., text), or a name holding one."""
        for sub in self.nodes(node):
            if isinstance(sub, ast.Name) and sub.id in self.tested:
                return True
            if isinstance(sub, ast.Compare):
                sides = [sub.left, *sub.comparators]
                texts = any(self.is_text(s) for s in sides)
                if texts and any(isinstance(op, (ast.In, ast.NotIn)) for op in sub.ops):
                    return True
                if texts and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in sub.ops) and \
                        any(isinstance(s, ast.Constant) and isinstance(s.value, str) for s in sides):
                    return True
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
                if sub.func.attr in MATCH_METHODS and self.is_text(sub.func.value):
                    return True
                if sub.func.attr in REGEX_FUNCS and any(self.is_text(a) for a in sub.args):
                    return True
        return False


def _names(target):
    """The plain names a binding sets (not `obj.attr = ...`, which changes obj rather than naming text)."""
    if isinstance(target, ast.Name):
        return [target]
    if isinstance(target, (ast.Tuple, ast.List, ast.Starred)):
        return [n for t in (target.elts if not isinstance(target, ast.Starred) else [target.value]) for n in _names(t)]
    return []


def _bindings(node):
    if isinstance(node, ast.Assign):
        pairs = []
        for target in node.targets:
            same_shape = isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple) and \
                len(target.elts) == len(node.value.elts)
            pairs += list(zip(target.elts, node.value.elts, strict=True)) if same_shape else [(target, node.value)]
        return pairs
    if isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)) and node.value is not None:
        return [(node.target, node.value)]
    if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
        return [(node.target, node.iter)]
    return []


def _conditions(fn):
    """if/elif, while, ternary and comprehension tests, and the arguments of any/all/next/filter."""
    for node in ast.walk(fn):
        if isinstance(node, (ast.If, ast.While, ast.IfExp)):
            yield node.test
        elif isinstance(node, ast.comprehension):
            yield from node.ifs
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("any", "all", "next", "filter"):
            yield from node.args


def text_decisions(source: str, where: str, classifiers: dict = TEXT_CLASSIFIERS) -> list[str]:
    """file:line of each condition that tests an exception's text, outside the listed classifiers."""
    allowed = {name for (path, name) in classifiers if path == where}
    every = {name for (_, name) in classifiers}
    found = set()
    for fn in ast.walk(ast.parse(source)):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name not in allowed:
            text = ErrorText(fn, every)
            found |= {f"{where}:{test.lineno}" for test in _conditions(fn) if text.tests_text(test)}
    return sorted(found)


def test_no_decision_in_the_kit_reads_an_error_message():
    found = [hit for path in python_files(KIT)
             for hit in text_decisions(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == [], "decide by SQLSTATE, exception type or return value, or add a documented classifier"


def test_each_listed_classifier_exists_and_says_why():
    for (path, name), reason in TEXT_CLASSIFIERS.items():
        functions = {n.name: n for n in ast.walk(ast.parse((ROOT / path).read_text())) if isinstance(n, ast.FunctionDef)}
        assert name in functions, f"{path} has no function {name} ({reason})"
        assert ast.get_docstring(functions[name]), f"{path}:{name} says nowhere why it reads text"


@pytest.mark.parametrize("source, lines", [
    ("def f():\n    try:\n        g()\n    except E as exc:\n        if 'marked' in str(exc):\n            pass\n", [5]),
    ("def f(exc):\n    return 1 if str(exc).startswith('wrong') else 2\n", [2]),
    ("def f(message):\n    at = message.find('x')\n    if at >= 0:\n        pass\n", [3]),
    ("def f(exc: Error):\n    text = exc.diag.message_primary.lower()\n    return any(h in text for h in HINTS)\n", [3]),
    ("def f(exc):\n    if exc.sqlstate in CODES or isinstance(exc, E):\n        pass\n", []),
    ("def f(exc):\n    code, text = classify(exc.detail)\n    if code == 'KB001':\n        pass\n", []),
])
def test_the_error_text_check_finds_each_form(source, lines):
    assert text_decisions(source, "kit/x.py", {("kit/y.py", "classify"): ""}) == [f"kit/x.py:{n}" for n in lines]
