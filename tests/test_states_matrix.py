"""Every before-state in tests/states/matrix/ through the whole cycle, in the way migra's test folders work.

Each state is the plan's current state (baseline + 5,000 usage rows, a third of them with UUIDs)
changed by one SQL file. Directives in the file's first lines:
  -- blocker: TEXT      kit status and the push must name it, and the push must change nothing;
  -- fix: SQL           then run, after which the state goes through the cycle;
  -- smoke-set: C=V     the --set the smoke test needs (and without which it fails naming C and the flag).
The cycle: status -> backup -> push (direct) -> verify --backup -> smoke over SQL and over REST ->
rollback -> push again -> verify. Every usage row (every column, its names and its original links),
every provider and model with its UUID, and the schema are compared with the state before.
The REST smoke runs against tests/standin_postgrest.py, a local stand-in for PostgREST (which
cannot run here) backed by the same database.
"""

import json
import re
from pathlib import Path

import pytest

from tests import snapshot
from tests.helpers import LOOKUPS, MATRIX, ROWS, query, run_file
from tests.standin import serve
from tests.standin_postgrest import postgrest_route

pytestmark = pytest.mark.majors  # scripts/test.sh runs these on every major

STATES = sorted(p.stem for p in MATRIX.glob("*.sql"))
KEY = "matrix-service-role"
NAMES = ("select coalesce(jsonb_agg(to_jsonb(u) - 'provider_id' - 'model_id' order by to_jsonb(u)::text), '[]') "
         "from public.llm_usage u")


def directives(text: str) -> dict:
    return {m[1]: m[2].strip() for m in re.finditer(r"^-- (blocker|fix|smoke-set): (.*)$", text, re.M)}


def rows(url: str) -> list[dict]:
    return query(url, ROWS)[0][0]


def without_links(url: str) -> list[dict]:
    return query(url, NAMES)[0][0]


def smoke_both(run_kit, clean_env, url: str, sets: list[str]) -> None:
    before = rows(url)
    run = run_kit("smoke", "--via", "sql", "--db-url", url, "--json", *sets)
    assert run.code == 0, run.out + run.err
    assert rows(url) == before
    with serve(postgrest_route(url, KEY)) as api:
        clean_env.setenv("SUPABASE_URL", api.url)
        clean_env.setenv("SUPABASE_SERVICE_ROLE_KEY", KEY)
        run = run_kit("smoke", "--via", "rest", "--json", "--concurrency", "5", *sets)
        clean_env.delenv("SUPABASE_URL")
        clean_env.delenv("SUPABASE_SERVICE_ROLE_KEY")
    assert run.code == 0, run.out + run.err
    assert rows(url) == before


def push_ok(run_kit, url: str) -> None:
    run = run_kit("push", "--via", "direct", "--no-lint", "--db-url", url, "--json")
    assert run.code == 0, run.err
    assert run.json["applied"][-1:] == ["20261124120000"]


def verify_ok(run_kit, url: str, backup: Path) -> list[dict]:
    run = run_kit("verify", "--db-url", url, "--backup", str(backup), "--json")
    failed = [c for c in run.json["checks"] if not c["ok"]]
    assert (run.code, failed) == (0, [])
    return run.json["checks"]


@pytest.mark.parametrize("state", STATES)
def test_state_goes_through_the_whole_cycle(state, make_db, run_kit, clean_env, tmp_path):
    url = make_db()
    text = (MATRIX / f"{state}.sql").read_text()
    run_file(url, text)
    say = directives(text)
    status = run_kit("status", "--db-url", url, "--json")
    assert (status.code, status.json["phase"]) == (0, "before"), status.err
    if "blocker" in say:
        assert [b for b in status.json["blockers"] if say["blocker"] in b], status.json["blockers"]
        schema, data = snapshot.schema(url), snapshot.data(url)
        refused = run_kit("push", "--via", "direct", "--no-lint", "--db-url", url, "--json")
        assert refused.code == 4 and say["blocker"] in refused.err
        assert (snapshot.schema(url), snapshot.data(url)) == (schema, data)
        query(url, say["fix"])
        status = run_kit("status", "--db-url", url, "--json")
    assert status.json["blockers"] == []

    before, lookups, schema = rows(url), query(url, LOOKUPS), snapshot.schema(url)
    names = without_links(url)
    backup = run_kit("backup", "--db-url", url, "--out", str(tmp_path), "--json")
    assert backup.code == 0, backup.err
    path = Path(backup.json["path"])
    # Read once: whatever the key (or none) and partitions, the links file comes from the dump's rows.
    maps = json.loads((path / "manifest.json").read_text())["maps"]
    assert maps.get("llm_usage_from") == "dump"

    push_ok(run_kit, url)
    assert without_links(url) == names  # every row and name kept, only the UUID columns gone
    verify_ok(run_kit, url, path)
    sets = ["--set", say["smoke-set"]] if "smoke-set" in say else []
    if sets:
        column = say["smoke-set"].split("=")[0]
        failed = run_kit("smoke", "--via", "sql", "--db-url", url, "--json")
        assert failed.code == 2
        assert f"pass --set {column}=VALUE" in failed.json["error"]
    smoke_both(run_kit, clean_env, url, sets)

    rolled = run_kit("rollback", str(path), "--db-url", url, "--json")
    assert rolled.code == 0, rolled.err
    assert rolled.json["phase"] == "before"
    assert query(url, LOOKUPS) == lookups
    assert snapshot.schema(url) == schema
    after = rows(url)
    if state == "usage_no_key":
        # Without a key every row is linked through its names; the report counts the rows whose
        # original link cannot be proven, and those are exactly the rows that changed.
        changed = [r for r in after if r not in before]
        pairs = {(u["provider_name"], u["model_name"]) for u in rolled.json["unprovable"]}
        assert changed and all((r["provider_name"], r["model_name"]) in pairs for r in changed)
        assert rolled.json["unprovable_rows"] == sum(1 for r in after if (r["provider_name"], r["model_name"]) in pairs)
        assert without_links(url) == names
    else:
        assert after == before
        assert rolled.json["unprovable_rows"] == 0

    push_ok(run_kit, url)
    assert without_links(url) == names
    verify_ok(run_kit, url, path)
