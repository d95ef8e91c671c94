#!/usr/bin/env bash
# Installs the kit and its test tools into .venv; the pinned Supabase CLI and the PostgreSQL servers
# (15, 17, 18, with contrib) into node_modules; then runs the whole suite on PostgreSQL 17 (what Supabase
# creates new projects on), and the tests marked `majors` (their outcome depends on the server's major:
# the shape matrix, backup and restore, legacy statements, locks, client tools) again on 15 and 18.
# Each run prints its 15 slowest tests. Before them, ruff and mypy (pyproject.toml) must find nothing.
# Two workers (pytest-xdist), each with its own test server: the suite waits on PostgreSQL as much as it
# computes, so on two cores it takes about 0.6 of the time of one worker.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
npm install --silent --no-audit --no-fund
# tests/test_pooler.py runs a real PgBouncer (Debian's package); CI runs this script as root
if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ] && [ "$(id -u)" = 0 ]; then
  apt-get install -y -qq pgbouncer >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq pgbouncer; }
fi
status=0
# Lint (ruff: kit/, tests/, benchmarks/, scripts/) and types (mypy: kit/), configured in pyproject.toml; a finding
# fails the script, after the suites have run too.
echo "== ruff and mypy"
start=$SECONDS
.venv/bin/ruff check --quiet kit tests benchmarks scripts || status=$?
.venv/bin/mypy || status=$?
echo "ruff and mypy: $((SECONDS - start)) s"
echo "== PostgreSQL 17: the whole suite"
KIT_TEST_PG_MAJOR=17 .venv/bin/python -m pytest -n 2 --durations=15 "$@" || status=$?
for major in 15 18; do
  echo "== PostgreSQL $major: the tests marked majors"
  KIT_TEST_PG_MAJOR=$major .venv/bin/python -m pytest -n 2 -m majors --durations=15 "$@" || status=$?
done
exit $status
