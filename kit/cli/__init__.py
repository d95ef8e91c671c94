"""The command line: parses flags, calls one library function per command, prints, exits.

One module per command; exit codes come from kit/errors.py's classes, and every --help ends with them.
"""

import argparse
import importlib
import json
import sys
import traceback

from kit import __version__, settings as settings_mod, tls
from kit.cli.options import EPILOG, Formatter
from kit.cli.output import Result
from kit.errors import UNEXPECTED, Interrupted, KitError
from kit.redact import redact

DESCRIPTION = """Ship the LLM name-key migration to a Supabase database safely.

examples:
  kit local up && kit deploy                   # the whole runbook on the local default
  kit init --workdir ../your-app               # add the change to your app's supabase/migrations
  kit status --target staging                  # STAGING_SUPABASE_DB_URL from .env: phase, blockers
  kit deploy --workdir ../your-app --target production
  kit rollback backups/production/20261124T120000Z --target production
  kit COMMAND --help                           # each command's own options and examples"""
# In --help's order
COMMANDS = ("init", "deploy", "status", "verify", "local", "backup", "rollback", "push", "smoke", "branch")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser, or only the one named (kit/cli/<name>.py)."""
    parser = argparse.ArgumentParser(
        prog="kit", description=DESCRIPTION,
        epilog=EPILOG, formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"kit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only in (None, name):
            importlib.import_module(f"kit.cli.{name}").register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_named(argv)).parse_args(argv)
    settings = None
    try:
        settings = settings_mod.load({"db_url": args.db_url, "target": args.target, "workdir": args.workdir,
                                      "allow_plaintext": getattr(args, "allow_plaintext", None) or None,
                                      "expand": getattr(args, "expand", None) or None})
        warning = tls.check(settings)
        if warning:
            print(f"kit: warning: {warning}", file=sys.stderr)
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
    try:
        if args.json:
            print(redact(json.dumps(result.data, default=str), secrets))
        elif result.text:
            print(redact(result.text, secrets))
    except BrokenPipeError:  # `kit status | head -1`: the reader left; the command's outcome still decides
        pass
    return result.exit_code


def _named(argv: list[str]) -> str | None:
    """The command the line names, if it is one. Only its module, and the library it runs, is imported: a
    backup does not load the HTTP client of the branch commands (start-up is part of every command's wall
    time). None for --help, --version or a word that is no command: then every command, as before."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in COMMANDS else None


def _fail(args, settings, message: str, code: int) -> int:
    secrets = settings.secrets if settings else ()
    message = redact(message.splitlines()[0] if message else "failed", secrets)
    print(f"kit: error: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": message, "exit_code": code}))
    return code
