#!/usr/bin/env python3
"""Smoke-test LLM usage inserts: the script CI jobs and people run (the kit's `smoke` under it).

  python scripts/smoke_test.py                      # the local default, over SQL
  python scripts/smoke_test.py --via rest --json    # SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY, supabase-py
  python scripts/smoke_test.py --branch pr-42 --yes # a preview branch, through the Management API

Every row it inserts is tagged with a run id and deleted, even when a check fails halfway.
Exit codes are the kit's: 0 every check passed, 5 a check failed, 2 configuration, 3 cannot connect.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from kit.cli import main


def parse(argv: list[str]) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--branch", metavar="NAME", help="smoke a preview branch (SUPABASE_ACCESS_TOKEN, "
                        "SUPABASE_PROJECT_REF)")
    parser.add_argument("--via", choices=["rest", "sql"], help="rest (supabase-py) or sql; default: rest when "
                        "SUPABASE_URL is set")
    parser.add_argument("--db-url", metavar="URL", help="for --via sql (else SUPABASE_DB_URL, else the local default)")
    parser.add_argument("--concurrency", type=int, default=20, metavar="N", help="concurrent inserts (default 20)")
    parser.add_argument("--wait-s", type=float, default=900, metavar="S",
                        help="--branch: how long to wait for its migrations and seed (default 900)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.add_argument("--yes", action="store_true", help="do not ask before writing rows to a database or project "
                        "that is not local (needed without a terminal, as in CI)")
    args = parser.parse_args(argv)
    common = ["--concurrency", str(args.concurrency)] + (["--json"] if args.json else []) + (
        ["--yes"] if args.yes else [])
    if args.branch:
        return ["branch", "smoke", args.branch, "--wait-s", str(args.wait_s)] + common
    return ["smoke"] + (["--via", args.via] if args.via else []) + (
        ["--db-url", args.db_url] if args.db_url else []) + common


if __name__ == "__main__":
    sys.exit(main(parse(sys.argv[1:])))
