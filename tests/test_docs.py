"""The README and docs/ cannot drift from the kit: links and anchors, flags, the exit-code table and the samples."""

import argparse
import ast
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from kit import errors
from kit.cli import build_parser
from kit.migrations import history, workdir
from tests.helpers import CHANGE_FILE, ROOT, migrate_direct

README = ROOT / "README.md"
DOCS = ROOT / "docs"
DOC_PAGES = sorted(DOCS.glob("*.md"))
PAGES = [README, *DOC_PAGES]
KIT = ROOT / "kit"
THIS_FILE = Path(__file__).resolve()

# The page that documents each command and its subcommands.
PAGE_OF = {
    "init": "init.md",
    "deploy": "deploy.md",
    "status": "deploy.md",
    "verify": "deploy.md",
    "push": "push.md",
    "backup": "backup-and-rollback.md",
    "rollback": "backup-and-rollback.md",
    "smoke": "smoke-and-branches.md",
    "branch": "smoke-and-branches.md",
    "local": "local.md",
}
# Flags the pages name that belong to another tool, and that tool.
OTHER_TOOLS = {
    "--include-all": "supabase db push",
    "--remote": "the Supabase CLI: supabase db push, supabase migration repair",
    "--status": "supabase migration repair",
    "--snapshot": "pg_dump",
    "--data-only": "pg_restore, supabase db dump",
    "--list": "pg_restore",
    "--use-list": "pg_restore",
    "--roles-only": "pg_dumpall",
    "--single-transaction": "psql",
    "--silent": "npm install",
    "--short": "git status",
    "--durations": "pytest",
    "--branch": "scripts/smoke_test.py",
    "--rtt": "benchmarks/remote.py",
}

LINK = re.compile(r"\[[^\[\]]*\]\(([^()\s]+)\)")
HEADING = re.compile(r"#{1,6} +(.+?) *#* *$")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
MARKER = re.compile(r"<!-- (?:illustrative: \S.*|compared: tests/test_docs\.py::(\w+)) -->")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, counted from 1
    lang: str
    before: str  # the line just above the opening fence
    text: str

    def where(self) -> str:
        return f"{relative(self.page)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The page's fenced code blocks."""
    lines = page.read_text().splitlines()
    found, start = [], None
    for number, line in enumerate(lines):
        if not line.startswith("```"):
            continue
        if start is None:
            start = number
        else:
            before = lines[start - 1] if start else ""
            body = "\n".join(lines[start + 1:number]) + "\n"
            found.append(Block(page, start + 1, lines[start][3:].strip(), before, body))
            start = None
    return found


def prose(page: Path) -> str:
    """The page without its fenced code blocks."""
    kept, inside = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def relative(page: Path) -> str:
    return str(page.relative_to(ROOT))


# Links and anchors

def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before duplicates are numbered)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in prose(page).splitlines():
        match = HEADING.match(line)
        if match:
            base = slug(match[1])
            found.add(f"{base}-{seen[base]}" if base in seen else base)
            seen[base] = seen.get(base, 0) + 1
    return found


def links(page: Path) -> list[str]:
    """The targets of the page's links outside code blocks, external ones left out."""
    return [target for target in LINK.findall(prose(page)) if not re.match(r"[a-z]+:", target)]


def broken_link(page: Path, target: str) -> str | None:
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    if not file.exists():
        return f"{relative(page)}: {target}: no file {path}"
    if anchor and (file.suffix != ".md" or anchor not in anchors(file)):
        return f"{relative(page)}: {target}: no heading #{anchor} in {file.relative_to(ROOT)}"
    return None


@pytest.mark.parametrize("heading, anchor", [
    ("`kit status`", "kit-status"),
    ("Exact, whatever the table's shape", "exact-whatever-the-tables-shape"),
    ("Migration history: versions the folder lacks", "migration-history-versions-the-folder-lacks"),
    ("Flags of `kit init`", "flags-of-kit-init"),
    ("The push under load (`benchmarks/migration_under_load.py`)", "the-push-under-load-benchmarksmigration_under_loadpy"),
])
def test_a_heading_gets_githubs_anchor(heading, anchor):
    assert slug(heading) == anchor


def test_a_repeated_heading_gets_a_number(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Flags\n\n## Flags\n\n```text\n# Flags\n```\n\n## Flags\n")
    assert anchors(page) == {"flags", "flags-1", "flags-2"}


def test_links_in_code_and_to_the_web_are_left_out(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](a.md) [b\nc](#b) [web](https://example.com)\n```text\n[d](d.md)\n```\n`[1,5)` (int4range)\n")
    assert links(page) == ["a.md", "#b"]


def test_every_relative_link_and_anchor_resolves():
    checked = [(page, target) for page in PAGES for target in links(page)]
    broken = [problem for page, target in checked if (problem := broken_link(page, target))]
    assert broken == []
    assert len(checked) > 50  # the pages link to each other throughout: a finder that found none would pass


def test_the_readme_is_at_most_200_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= 200


# Flags

def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], set[str]]:
    """Every command and subcommand, as its words, with its long flags."""
    found = {path: {flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")}}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= commands(sub, (*path, name))
    return found


def flags_named(text: str) -> set[str]:
    return set(FLAG.findall(text))


def flags_in_the_docs() -> dict[str, list[str]]:
    """Each flag the pages name, with the pages that name it."""
    found: dict[str, list[str]] = {}
    for page in PAGES:
        for flag in sorted(flags_named(page.read_text())):
            found.setdefault(flag, []).append(relative(page))
    return found


def test_each_command_has_its_page():
    top = {words[0] for words in commands(build_parser()) if words}
    assert top == set(PAGE_OF)
    assert [page for page in PAGE_OF.values() if not (DOCS / page).exists()] == []


def test_every_flag_of_a_command_is_on_its_page():
    missing = []
    for words, flags in commands(build_parser()).items():
        if words:
            page = DOCS / PAGE_OF[words[0]]
            missing += [f"kit {' '.join(words)} {flag}: not in docs/{page.name}"
                        for flag in sorted(flags - flags_named(page.read_text()))]
    assert missing == []


def test_every_flag_the_docs_name_is_the_kits_or_another_tools():
    kit_flags = set().union(*commands(build_parser()).values())
    assert "--version" in kit_flags
    named = flags_in_the_docs()
    unknown = {flag: pages for flag, pages in named.items() if flag not in kit_flags | OTHER_TOOLS.keys()}
    assert unknown == {}, "flags of no kit command: fix the page, or list the tool they belong to in OTHER_TOOLS"
    assert sorted(OTHER_TOOLS.keys() - named.keys()) == [], "listed as another tool's, but no page names it"
    assert sorted(OTHER_TOOLS.keys() & kit_flags) == [], "a flag of the kit listed as another tool's"


def test_the_flag_finder_reads_flags_not_dashes():
    text = "kit backup --out DIR --jobs=2, `--via cli|direct`; x--y, ---, -- a comment, --- supabase-kit, -n"
    assert flags_named(text) == {"--out", "--jobs", "--via"}


# Exit codes: the README's table is tests/test_errors.py's; here, only that no other page repeats it.

def table_rows(page: Path) -> list[list[str]]:
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            for line in prose(page).splitlines() if line.startswith("|")]


def exit_code_rows(page: Path) -> list[str]:
    """The page's table rows that give an exit code with its meaning from kit/errors.py."""
    return [" | ".join(cells) for cells in table_rows(page)
            for code, meaning in errors.exit_codes() if str(code) in cells and meaning in cells]


def test_no_docs_page_repeats_the_exit_code_table():
    assert len(exit_code_rows(README)) == len(errors.exit_codes())  # the finder finds the README's own
    repeated = {relative(page): rows for page in DOC_PAGES if (rows := exit_code_rows(page))}
    assert repeated == {}


# Samples: every ```text block is marked illustrative, or compared with what the kit prints by a test below.

def text_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page) if block.lang == "text"]


def defined_tests() -> set[str]:
    tree = ast.parse(THIS_FILE.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def samples(test_name: str, count: int = 1) -> list[Block]:
    """The `count` samples marked as compared by test_name."""
    marker = f"<!-- compared: tests/test_docs.py::{test_name} -->"
    found = [block for block in text_blocks() if block.before == marker]
    assert len(found) == count, f"{count} sample(s) should follow {marker}, found: {[b.where() for b in found]}"
    return found


def command_and_output(block: Block) -> tuple[list[str], list[str]]:
    """A sample's `$ kit ...` line as argv, and the lines it printed."""
    first, *rest = block.text.splitlines()
    assert first.startswith("$ kit "), f"{block.where()} does not start with the command it shows"
    return shlex.split(first[len("$ kit "):]), rest


def test_every_text_sample_is_marked():
    unmarked = [block.where() for block in text_blocks() if not MARKER.fullmatch(block.before)]
    assert unmarked == []


def test_every_compared_sample_names_a_test_here():
    markers = [MARKER.fullmatch(block.before) for block in text_blocks()]
    named = {marker[1] for marker in markers if marker and marker[1]}
    assert sorted(named - defined_tests()) == []


def record_the_baseline(url: str) -> None:
    """The baseline in the history, as on the local default (the test template has its tables, not the row)."""
    baseline = workdir.migrations_in(ROOT / "supabase" / "migrations")[0]
    with psycopg.connect(url, autocommit=True) as conn:
        history.apply(conn, baseline)


def path_without_pg_dump() -> str:
    """PATH without the folders that hold a pg_dump: the sample shows the kit's own, which a pg_dump on PATH with
    TLS and of the server's major or later would replace (then the line would say so, rightly)."""
    folders = os.environ["PATH"].split(os.pathsep)
    return os.pathsep.join(folder for folder in folders if not (Path(folder) / "pg_dump").exists())


def without_places(lines: list[str]) -> list[str]:
    """kit status's lines with the database's URL and pg_dump's path left out, their labels kept."""
    return [re.sub(r"^(database|pg_dump)( +)\S+", r"\1\2PLACE", line) for line in lines]


def test_the_status_and_verify_samples_are_what_the_kit_prints(make_db, run_kit, clean_env):
    status, verify = samples("test_the_status_and_verify_samples_are_what_the_kit_prints", count=2)
    url = make_db() + "?sslmode=disable"  # the local default's servers speak no TLS, and its URL says so
    record_the_baseline(url)
    clean_env.setenv("SUPABASE_DB_URL", url)
    clean_env.setenv("PATH", path_without_pg_dump())

    argv, printed = command_and_output(status)
    run = run_kit(*argv)
    assert run.code == 0, run.err
    assert without_places(run.out.splitlines()) == without_places(printed)

    argv, printed = command_and_output(verify)
    run = run_kit(*argv)
    assert run.code == 5, run.err
    assert run.out.splitlines() == printed


def without_times(lines: list[str]) -> list[str]:
    """kit smoke's lines with times and run ids left out, and the columns' widths with them."""
    normal = []
    for line in lines:
        line = re.sub(r"\b\d+(?:\.\d+)? ms\b", "N ms", line)
        line = re.sub(r"\brun id [0-9a-f]{12}\b", "run id ID", line)
        normal.append(re.sub(r"-{2,}", "--", re.sub(r" {2,}", "  ", line)))
    return normal


def test_the_smoke_sample_is_what_kit_smoke_prints(make_db, run_kit, clean_env):
    (sample,) = samples("test_the_smoke_sample_is_what_kit_smoke_prints")
    url = make_db() + "?sslmode=disable"
    migrate_direct(url)
    clean_env.setenv("SUPABASE_DB_URL", url)
    argv, printed = command_and_output(sample)
    run = run_kit(*argv)
    assert run.code == 0, run.err
    assert without_times(run.out.splitlines()) == without_times(printed)


def without_version_and_folder(lines: list[str]) -> list[str]:
    """kit init's lines with the new file's version and the app's absolute folder left out."""
    return [re.sub(r"--workdir /\S*/your-app\b", "--workdir DIR/your-app",
                   re.sub(r"(?<=^added supabase/migrations/)\d{14}(?=_)", "VERSION", line)) for line in lines]


def test_the_init_sample_is_what_kit_init_prints(team, run_kit, clean_env, tmp_path):
    (sample,) = samples("test_the_init_sample_is_what_kit_init_prints")
    beside = tmp_path / "supabase-kit"  # run from a folder beside the app, so that ../your-app is the team's repo
    beside.mkdir()
    clean_env.chdir(beside)
    argv, printed = command_and_output(sample)
    run = run_kit(*argv)
    assert run.code == 0, run.err
    assert without_version_and_folder(run.out.splitlines()) == without_version_and_folder(printed)
    added = run.out.splitlines()[0].removeprefix("added ")
    assert (team / added).read_text() == CHANGE_FILE.read_text()  # the kit's file byte for byte, as the page says


def tree_paths(tree: str) -> set[str]:
    """Each entry of an indented tree (two spaces a level, folders ending in /) as its path."""
    stack: list[str] = []
    found = set()
    for line in tree.splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        stack[depth:] = [line.split()[0]]
        found.add("".join(stack))
    return found


def only_a_docstring(module: Path) -> bool:
    return module.name == "__init__.py" and len(ast.parse(module.read_text()).body) == 1


def kit_files() -> set[str]:
    """Every module of kit/ and every folder holding one, plus the folders of SQL and templates. A package's
    __init__.py that holds only its docstring is said by its folder's line."""
    modules = [p for p in KIT.rglob("*.py") if "__pycache__" not in p.parts]
    folders = {f"{p.parent.relative_to(ROOT).as_posix()}/" for p in modules} | {"kit/sql/", "kit/templates/"}
    return {p.relative_to(ROOT).as_posix() for p in modules if not only_a_docstring(p)} | folders


def floors_in_the_docs() -> list[set[str]]:
    """The floors sentence of docs/development.md, top floor first, names without .py."""
    text = " ".join((DOCS / "development.md").read_text().split())
    chain = next(m[0] for m in re.finditer(r"`[^`]+`(?:(?:, | → )`[^`]+`)+", text) if "→" in m[0])
    return [{name.removesuffix(".py") for name in re.findall(r"`([^`]+)`", floor)} for floor in chain.split(" → ")]


def floors_in_the_layout_test() -> list[set[str]]:
    """FLOORS of tests/test_layout.py, read without importing it, top floor first, names without kit."""
    tree = ast.parse((ROOT / "tests" / "test_layout.py").read_text())
    value = next(node.value for node in tree.body
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "FLOORS")
    return [{room.removeprefix("kit.") for room in rooms if room != "kit"} for rooms in reversed(ast.literal_eval(value))]


def test_the_layout_lists_every_module_of_the_kit():
    (sample,) = samples("test_the_layout_lists_every_module_of_the_kit")
    listed = tree_paths(sample.text)
    assert sorted(kit_files() - listed) == [], "in kit/ but not in the layout of docs/development.md"
    assert sorted(p for p in listed if not (ROOT / p).exists()) == [], "in the layout but not in kit/"
    assert floors_in_the_docs() == floors_in_the_layout_test()
