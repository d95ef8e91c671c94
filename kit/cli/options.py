"""The flags every command takes, the flags several share, and each parser, whose --help ends with the exit codes."""

import argparse

from kit.errors import ConfigError, exit_codes_text

EPILOG = exit_codes_text()


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' own line breaks; shows an optional subcommand as optional in the usage line
    (`kit backup` alone takes a backup: `[{verify,list,prune} ...]`)."""

    def _format_args(self, action, default_metavar):
        text = super()._format_args(action, default_metavar)
        return f"[{text}]" if action.nargs == argparse.PARSER and not action.required else text


def common_options(inherited: bool = False) -> argparse.ArgumentParser:
    """--db-url, --target, --workdir, --allow-plaintext, --json, --debug.

    inherited: for a subcommand (`kit backup verify`), whose parent takes them too. argparse copies every
    value a subparser holds over its parent's, defaults included, so there they default to nothing and
    `kit backup --json verify PATH` keeps the --json given before the subcommand's name.
    """
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS if inherited else None)
    group = common.add_argument_group("common options")
    group.add_argument("--db-url", metavar="URL",
                       help="target database (else SUPABASE_DB_URL, else the local default); to a non-local host a "
                       "URL without sslmode is treated as sslmode=require, and its sslmode, sslrootcert, sslcert "
                       "and sslkey (else PGSSLMODE, PGSSLROOTCERT, ...) reach every tool")
    group.add_argument("--target", metavar="NAME", help="a profile from .env: NAME_SUPABASE_DB_URL and friends")
    group.add_argument("--workdir", metavar="DIR", help="folder holding supabase/ (else searched upward, else bundled)")
    group.add_argument("--allow-plaintext", action="store_true",
                       help="let sslmode=disable, allow or prefer reach a non-local host (a warning is printed); "
                            "without it they are refused before anything connects")
    group.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    group.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    return common


def command(commands, name: str, description: str, help: str | None = None,
            subcommand: bool = False) -> argparse.ArgumentParser:
    """A parser in `commands` (an add_subparsers() action) with the common options; its --help ends with the
    exit codes."""
    listed = {"help": help} if help else {}  # without help, `kit local --help` lists no line per subcommand
    return commands.add_parser(name, parents=[common_options(inherited=subcommand)], description=description,
                               epilog=EPILOG, formatter_class=Formatter, **listed)


def yes_option(parser: argparse.ArgumentParser, help: str) -> None:
    """--yes: go on without the typed confirmation; `help` says what it no longer asks before."""
    parser.add_argument("--yes", action="store_true", help=help)


MAX_CONCURRENCY = 1000  # rows inserted at once by the concurrency check, all deleted again


def concurrency_option(parser: argparse.ArgumentParser, what: str) -> None:
    """--concurrency N for the smoke test, its default the smoke library's."""
    from kit.smoke import CONCURRENCY  # here: only the commands that smoke-test load the smoke library

    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, metavar="N",
                        help=f"{what}, 1 to {MAX_CONCURRENCY} (default {CONCURRENCY})")


def concurrency(n: int) -> int:
    """--concurrency, checked before anything is sent."""
    if not 1 <= n <= MAX_CONCURRENCY:
        raise ConfigError(f"--concurrency {n} is not a number of concurrent inserts: pass 1 to {MAX_CONCURRENCY}")
    return n
