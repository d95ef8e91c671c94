"""kit status and kit verify on real databases, through the CLI."""

from tests.helpers import migrate_direct, query


def test_status_before_lists_pending_and_no_blockers(run_kit, db_url):
    run = run_kit("status", "--db-url", db_url, "--json")
    assert run.code == 0, run.err
    assert run.json["phase"] == "before"
    assert run.json["pending"] == ["20240101000000", "20261124120000"]
    assert run.json["blockers"] == []


def test_status_after_migration_is_migrated(run_kit, db_url):
    migrate_direct(db_url)
    run = run_kit("status", "--db-url", db_url, "--json")
    assert (run.code, run.json["phase"], run.json["pending"]) == (0, "migrated", [])


def test_status_absent_on_empty_database(run_kit, make_db):
    run = run_kit("status", "--db-url", make_db("kit_tpl_supabase"), "--json")
    assert (run.code, run.json["phase"]) == (0, "absent")


def test_status_is_read_only_even_with_blockers(run_kit, db_url):
    query(db_url, "insert into llm_models (provider_id, name) select id, 'gpt-4o' from llm_providers where name = 'groq'")
    before = query(db_url, "select count(*), (select count(*) from pg_class) from llm_models")
    run = run_kit("status", "--db-url", db_url, "--json")
    assert run.code == 0
    assert run.json["blockers"] == [
        "model name 'gpt-4o' is used by 2 models (providers: groq, openai); rename or merge them so each name is unique"]
    assert query(db_url, "select count(*), (select count(*) from pg_class) from llm_models") == before


def test_verify_fails_before_and_passes_after(run_kit, db_url):
    run = run_kit("verify", "--db-url", db_url, "--json")
    assert run.code == 5
    failed = {c["name"] for c in run.json["checks"] if not c["ok"]}
    assert "llm_providers primary key is name" in failed
    assert "no UUID key columns remain" in failed
    migrate_direct(db_url)
    run = run_kit("verify", "--db-url", db_url, "--json")
    assert run.code == 0, run.out
    assert run.json["ok"] is True
    assert all(c["ok"] for c in run.json["checks"])
    text = run_kit("verify", "--db-url", db_url)
    info = sum(c["level"] == "info" for c in run.json["checks"])
    assert info > 0  # RLS, policies, name types: shown, never failed, without --backup
    assert text.out.strip().endswith(f"{len(run.json['checks']) - info} passed, 0 failed, {info} info")
