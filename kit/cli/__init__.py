"""The command line: parses flags, calls one library function per command, prints, exits.

Exit codes: kit/errors.py's classes; every --help ends with them (errors.exit_codes_text()).
"""

import argparse
import json
import sys
import traceback

from kit import __version__, settings as settings_mod
from kit.cli import backup, branch, deploy, init, push, smoke, status
from kit.cli.output import Result
from kit.errors import KitError, exit_codes_text
from kit.redact import redact

COMMAND_MODULES = [init, deploy, status, backup, push, smoke, branch]
EPILOG = exit_codes_text()


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--db-url", metavar="URL", help="target database (else SUPABASE_DB_URL, else the local default)")
    group.add_argument("--target", metavar="NAME", help="a profile from .env: NAME_SUPABASE_DB_URL and friends")
    group.add_argument("--workdir", metavar="DIR", help="folder holding supabase/ (else searched upward, else bundled)")
    group.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    group.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kit", description="Ship the LLM name-key migration to a Supabase database safely.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"kit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_options()
    for module in COMMAND_MODULES:
        module.register(commands, common)
    for command in commands.choices.values():  # keep the examples in each --help on their own lines
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        command.epilog = EPILOG
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = None
    try:
        settings = settings_mod.load({"db_url": args.db_url, "target": args.target, "workdir": args.workdir})
        result: Result = args.handler(args, settings)
    except KitError as exc:
        return _fail(args, settings, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail(args, settings, "interrupted; every database is as the last finished step left it", 130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence prints one line, not a traceback
        if args.debug:
            traceback.print_exc()
        return _fail(args, settings, f"unexpected {exc.__class__.__name__}: {exc}; rerun with --debug", 1)
    secrets = settings.secrets if settings else ()
    if args.json:
        print(redact(json.dumps(result.data, default=str), secrets))
    elif result.text:
        print(redact(result.text, secrets))
    return result.exit_code


def _fail(args, settings, message: str, code: int) -> int:
    secrets = settings.secrets if settings else ()
    message = redact(message.splitlines()[0] if message else "failed", secrets)
    print(f"kit: error: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": message, "exit_code": code}))
    return code
