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
        if isinstance(node, ast.Return) and node.value is not None and literal(node.value):
            lines.append(node.lineno)
        elif isinstance(node, ast.IfExp) and (literal(node.body) or literal(node.orelse)):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("Result", "_fail"):
            if any(literal(a) for a in node.args) or any(k.arg == "exit_code" and literal(k.value)
                                                          for k in node.keywords):
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
