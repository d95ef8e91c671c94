"""The command line's shape: one module per command, real subcommands, every --help ending with the exit codes."""

import argparse
from pathlib import Path

import pytest

from kit import errors
from kit.cli import backup, branch, build_parser, local


def parsers(parser: argparse.ArgumentParser, prog: str = "kit"):
    """(prog, parser) for every command and subcommand, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prog} {name}", sub
                yield from parsers(sub, f"{prog} {name}")


def test_every_command_has_its_own_module():
    top = [name.split()[1] for name, _ in parsers(build_parser()) if name.count(" ") == 1]
    assert sorted(f"{name}.py" for name in top) == sorted(
        p.name for p in Path(backup.__file__).parent.glob("*.py") if p.name not in ("__init__.py", "options.py", "output.py"))


@pytest.mark.parametrize("prog, parser", list(parsers(build_parser())), ids=lambda v: v if isinstance(v, str) else "")
def test_every_help_at_every_depth_ends_with_the_exit_codes_and_has_examples(prog, parser):
    text = parser.format_help()
    assert text.startswith(f"usage: {prog} ")
    assert text.rstrip().endswith(errors.exit_codes_text())
    assert "\nexamples:\n  kit " in text or "\nexamples:\n  KIT_" in text or "\nexamples:\n  npx " in text


@pytest.mark.parametrize("argv, handler", [
    (["backup"], backup.cmd_backup),
    (["backup", "--db-url", "postgresql://x@h/db", "--jobs", "4"], backup.cmd_backup),
    (["backup", "verify", "backups/local/20261124T120000Z"], backup.cmd_verify),
    (["backup", "list"], backup.cmd_list),
    (["backup", "list", "--out", "DIR"], backup.cmd_list),
    (["backup", "prune", "--keep", "3"], backup.cmd_prune),
    (["local", "up"], local.cmd_up),
    (["local", "down"], local.cmd_down),
    (["local", "url"], local.cmd_url),
    (["branch", "list"], branch.cmd_list),
    (["branch", "create", "pr-42", "--git-branch", "feature/name-keys"], branch.cmd_create),
    (["branch", "status", "pr-42"], branch.cmd_status),
    (["branch", "smoke", "pr-42", "--wait-s", "1200", "--json"], branch.cmd_smoke),
    (["branch", "delete", "pr-42", "--yes"], branch.cmd_delete),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_the_documented_command_lines_reach_their_command(argv, handler):
    assert build_parser().parse_args(argv).handler is handler


@pytest.mark.parametrize("before, after", [
    (["backup", "--json", "--out", "DIR", "list"], ["backup", "list", "--json", "--out", "DIR"]),
    (["backup", "--json", "--db-url", "postgresql://x@h/db", "verify", "P"],
     ["backup", "verify", "P", "--json", "--db-url", "postgresql://x@h/db"]),
    (["local", "--json", "--workdir", "W", "url"], ["local", "url", "--json", "--workdir", "W"]),
    (["branch", "--json", "--target", "staging", "list"], ["branch", "list", "--json", "--target", "staging"]),
])
def test_options_before_or_after_the_subcommand_mean_the_same(before, after):
    assert vars(build_parser().parse_args(before)) == vars(build_parser().parse_args(after))


def test_backup_alone_takes_a_backup_and_shows_its_subcommands_as_optional():
    args = build_parser().parse_args(["backup"])
    assert (args.action, args.out, args.jobs, args.json) == (None, None, 1, False)
    usage = dict(parsers(build_parser()))["kit backup"].format_usage()
    assert "[{verify,list,prune} ...]" in usage


def test_backup_verify_without_a_folder_names_the_command_line(run_kit):
    run = run_kit("backup", "verify", "--json")
    assert (run.code, run.err) == (2, "kit: error: kit backup verify needs the backup folder: kit backup verify PATH\n")
    assert run.json == {"ok": False, "exit_code": 2,
                        "error": "kit backup verify needs the backup folder: kit backup verify PATH"}


def test_backup_prune_without_keep_names_the_flag(run_kit, tmp_path):
    run = run_kit("backup", "prune", "--out", str(tmp_path))
    assert (run.code, run.err) == (
        2, "kit: error: kit backup prune needs --keep N: the number of backups to keep per database\n")


def test_a_command_imports_only_its_own_module_and_help_lists_every_command():
    """`kit backup` loads kit/cli/backup.py and what it runs, not the branch commands' HTTP client: start-up
    is part of every command's wall time. `kit --help` still lists every command."""
    import subprocess
    import sys

    probe = ("import sys\nfrom kit.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith('kit.cli.') or m == 'httpx'))")
    root = Path(backup.__file__).parents[2]
    one = subprocess.run([sys.executable, "-c", probe, "backup", "--help"], capture_output=True, text=True, cwd=root)
    assert one.stdout.splitlines()[-1] == "['kit.cli.backup', 'kit.cli.options', 'kit.cli.output']"
    every = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, cwd=root)
    listed = [line.split()[0] for line in every.stdout.split("  COMMAND\n")[1].split("\n\n")[0].splitlines()
              if line.startswith("    ") and not line.startswith("     ")]
    assert listed == ["init", "deploy", "status", "verify", "local", "backup", "rollback", "push", "smoke", "branch"]
    assert "'kit.cli.branch'" in every.stdout.splitlines()[-1]


def test_a_reader_that_leaves_early_gets_no_traceback_and_the_exit_code_stays(tmp_path):
    """`kit backup list | head -1`, the reader gone before the kit prints: no traceback, exit 0, run as
    `python -m kit` runs it (the streams flushed, then a quick exit)."""
    import subprocess
    import sys

    root = Path(backup.__file__).parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "kit", "backup", "list", "--out", str(tmp_path)], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert (proc.wait(), err) == (0, "")
    done = subprocess.run([sys.executable, "-m", "kit", "backup", "list", "--out", str(tmp_path)], cwd=root,
                          capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, f"no backups under {tmp_path}\n")
