"""The command line: parses flags, calls one library function per command, prints, exits.

One module per command; exit codes come from kit/errors.py's classes, and every --help ends with them.
"""

import argparse
import json
import sys
import traceback

from kit import __version__, settings as settings_mod
from kit.cli import backup, branch, deploy, init, local, push, rollback, smoke, status, verify
from kit.cli.options import EPILOG, Formatter
from kit.cli.output import Result
from kit.errors import UNEXPECTED, Interrupted, KitError
from kit.redact import redact

COMMAND_MODULES = [init, deploy, status, verify, local, backup, rollback, push, smoke, branch]  # --help's order


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kit", description="Ship the LLM name-key migration to a Supabase database safely.",
        epilog=EPILOG, formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"kit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
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
        return _fail(args, settings, "interrupted; every database is as the last finished step left it",
                     Interrupted.exit_code)
    except Exception as exc:  # noqa: BLE001 - the last line of defence prints one line, not a traceback
        if args.debug:
            traceback.print_exc()
        return _fail(args, settings, f"unexpected {exc.__class__.__name__}: {exc}; rerun with --debug", UNEXPECTED)
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
