"""What particular before-states in tests/states/matrix/ must show beyond the common cycle."""

import pytest

from kit import settings as settings_mod
from tests.helpers import MATRIX, ROOT, ROWS, migrate_direct, query, run_file

pytestmark = pytest.mark.majors  # scripts/test.sh runs these on every major


def state(make_db, name: str) -> str:
    url = make_db()
    run_file(url, (MATRIX / f"{name}.sql").read_text())
    return url


INDEX_OID = "select indexrelid from pg_index where indexrelid = to_regclass(%s)"
KEY_INDEX = "select conindid, conname from pg_constraint where contype = 'p' and conrelid = to_regclass(%s)"


def test_a_plain_unique_name_index_becomes_the_key_as_it_is(make_db):
    url = state(make_db, "providers_unique_index")
    providers = query(url, INDEX_OID, ("public.llm_providers_name_uidx",))[0][0]
    models = query(url, INDEX_OID, ("public.llm_models_name_uidx",))[0][0]
    migrate_direct(url)
    assert query(url, KEY_INDEX, ("public.llm_providers",)) == [(providers, "llm_providers_name_uidx")]
    assert query(url, KEY_INDEX, ("public.llm_models",)) == [(models, "llm_models_name_uidx")]
    assert query(url, "select count(*) from pg_index where indrelid = 'llm_providers'::regclass") == [(1,)]


def test_a_unique_name_constraint_is_replaced_by_the_key_leaving_one_index(db_url):
    migrate_direct(db_url)
    assert query(db_url, "select indexrelid::regclass::text from pg_index where indrelid = 'llm_providers'::regclass") \
        == [("llm_providers_pkey",)]


def test_foreign_keys_to_auth_users_and_on_names_survive_the_migration(make_db):
    url = state(make_db, "fk_auth_users")
    query(url, "alter table llm_usage add constraint usage_provider_by_name foreign key (provider_name) "
               "references llm_providers (name)")
    migrate_direct(url)
    assert query(url, "select conname, pg_get_constraintdef(oid) from pg_constraint where contype = 'f' "
                      "and conrelid = 'llm_usage'::regclass order by 1") == [
        ("llm_usage_user_id_fkey", "FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE SET NULL"),
        ("usage_provider_by_name", "FOREIGN KEY (provider_name) REFERENCES llm_providers(name)")]


def test_status_suggests_the_name_index_for_one_that_led_with_model_id(make_db, run_kit):
    url = state(make_db, "index_leading_model_id")
    run = run_kit("status", "--db-url", url, "--json")
    assert run.json["suggestions"] == [
        "dropping model_id drops index llm_usage_model_id_agent_idx; build its name match outside the migration: "
        "create index concurrently on public.llm_usage (model_name, agent_name)"]
    assert "suggest" in run_kit("status", "--db-url", url).out


def test_a_partitioned_usage_table_has_no_false_blockers_and_keeps_its_partitions(make_db, run_kit):
    url = state(make_db, "usage_partitioned")
    assert query(url, "select count(*) from pg_constraint where conparentid <> 0 and contype = 'f'") != [(0,)]
    assert run_kit("status", "--db-url", url, "--json").json["blockers"] == []
    migrate_direct(url)
    assert query(url, "select count(*) from pg_inherits where inhparent = 'llm_usage'::regclass") == [(4,)]
    assert query(url, "select count(*) from pg_constraint where contype = 'f' and conrelid in "
                      "(select inhrelid from pg_inherits where inhparent = 'llm_usage'::regclass)") == [(0,)]


def test_publication_blockers_are_named_and_a_whole_table_publication_keeps_the_table(make_db, run_kit):
    url = state(make_db, "publication_column_list")
    assert run_kit("status", "--db-url", url, "--json").json["blockers"] == [
        "publication kit_usage_cols (its column list or row filter) on llm_usage depends on a UUID column; "
        "change or drop it first"]
    url = state(make_db, "publication_whole_table")
    migrate_direct(url)
    assert query(url, "select tablename from pg_publication_tables where pubname = 'supabase_realtime' "
                      "order by 1") == [("llm_models",), ("llm_usage",)]


def test_verify_shows_unchanged_properties_as_info_without_a_backup(make_db, run_kit):
    url = state(make_db, "external_name_reference")
    migrate_direct(url)
    run = run_kit("verify", "--db-url", url, "--json")
    assert run.code == 0
    info = {c["name"]: c["detail"] for c in run.json["checks"] if c["level"] == "info"}
    assert info["llm_usage: row level security"] == "disabled"
    assert info["foreign key provider_quotas_provider_name_fkey on provider_quotas"] == \
        "FOREIGN KEY (provider_name) REFERENCES llm_providers(name)"


def test_push_and_rollback_while_agents_keep_inserting(make_db, run_kit, tmp_path):
    """Two writers insert usage rows by name through the push and the rollback of a partitioned table;
    every row written after the backup is linked through its names, every older row as recorded."""
    import threading

    import psycopg

    url = state(make_db, "usage_partitioned")
    before = query(url, ROWS)[0][0]
    stop, done, errors = threading.Event(), [], []

    def writer() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    conn.execute("insert into llm_usage (provider_name, model_name, agent_name) "
                                 "values ('openai', 'gpt-4o', 'writer')")
                    done.append(1)
                except psycopg.Error as exc:
                    errors.append(str(exc))

    backup = run_kit("backup", "--db-url", url, "--out", str(tmp_path), "--json")
    assert backup.code == 0, backup.err
    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        assert run_kit("push", "--via", "direct", "--no-lint", "--db-url", url, "--json").code == 0
        from kit.rollback import in_place as rollback

        s = settings_mod.load({"db_url": url}, environ={}, cwd=ROOT)
        # The writers stop when step D starts.
        rolled = rollback.in_place(s, backup.json["path"], progress=lambda m: m.startswith("D:") and stop.set())
        assert rolled.phase == "before"
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert query(url, "select count(*) from llm_usage where agent_name = 'writer'") == [(len(done),)]
    assert len(done) > 0
    old = [r for r in query(url, ROWS)[0][0] if r["agent_name"] != "writer"]
    assert old == [r for r in before if r["agent_name"] != "writer"]
    linked = query(url, """select u.id, u.provider_id = p.id and u.model_id = m.id from llm_usage u
        join llm_providers p on p.name = 'openai' join llm_models m on m.name = 'gpt-4o'
        where agent_name = 'writer' order by u.id""")
    # Inserts that waited for step C's lock, or came before the writers saw the stop, ran after C:
    # every unlinked row is newer than every linked one.
    tail = [i for i, ok in linked if not ok]
    assert all(i > max(i for i, ok in linked if ok) for i in tail) and len(tail) < len(linked) // 2
    assert query(url, "select count(*) from llm_usage u where agent_name = 'writer' and u.provider_id is not null "
                      "and u.provider_id <> (select id from llm_providers where name = 'openai')") == [(0,)]


def test_deploy_passes_set_to_its_smoke_step(make_db, run_kit, clean_env, tmp_path):
    """A column the smoke test cannot fill stops deploy in preflight, before the backup and the push,
    naming it and the flag (exit 2); --set fills it."""
    url = state(make_db, "usage_extra_not_null")
    clean_env.chdir(tmp_path)
    failed = run_kit("deploy", "--db-url", url, "--json")
    assert failed.code == 2 and failed.json["failed_step"] == "preflight" and failed.json["backup"] is None
    assert failed.json["phase"] == "before"
    assert "llm_usage.client_ip (inet) is NOT NULL without a default" in failed.out
    assert "pass --set client_ip=VALUE" in failed.out
    done = run_kit("deploy", "--db-url", url, "--json", "--set", "client_ip=10.9.8.7")
    assert done.code == 0, done.out
    assert query(url, "select count(*) from llm_usage where client_ip = '10.9.8.7'") == [(0,)]
