"""`kit backup`, `kit backup verify` and `kit rollback` on a real PostgreSQL.

The platform-backups test uses tests/standin.py for the Management API, which cannot be reached here.
"""

import json
import re
import subprocess
from pathlib import Path

import psycopg
import pytest

from kit import settings as settings_mod
from kit.backup import manifest
from kit.local import clients
from tests.helpers import grow, migrate_direct, query, take
from tests.snapshot import data, schema
from tests.standin import Reply, serve
from tests.writers import TeamWriter

pytestmark = pytest.mark.majors  # scripts/test.sh runs these on every major

FILES = ["data.sql", "database.dump", "history.sql", "llm_usage_links.tsv", "manifest.json", "roles.sql", "schema.sql"]


def test_backup_writes_the_split_private_files_and_a_manifest(pg, db_url, run_kit, tmp_path):
    path = take(run_kit, db_url, tmp_path)
    host, port, name = db_url.split("@")[1].replace(":", "/").split("/")
    assert path.parent.parent == tmp_path and path.parent.name == f"{host}-{port}-{name}"  # host-port-database
    assert sorted(p.name for p in path.iterdir()) == FILES
    assert oct(path.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in path.iterdir()} == {"0o600"}
    m = json.loads((path / "manifest.json").read_text())
    assert m["complete"] is True and m["row_counts"]["public.llm_usage"] == 5000
    assert m["server_version"] if "server_version" in m else m["server"]
    # the pg_dump clients.choose picks for this server: a TLS one on PATH of the server's major or newer, else the kit's
    assert m["client"] == clients.choose(settings_mod.load({"db_url": db_url}), server_major=pg.version).version
    assert len(m["maps"]["llm_providers"]) == 5 and len(m["maps"]["llm_models"]) == 9
    assert (path / "data.sql").read_text().startswith("SET session_replication_role = replica;")
    roles = (path / "roles.sql").read_text()
    assert "CREATE ROLE kit_secret_user" in roles
    assert not any(f"ROLE {r};" in roles for r in ("postgres", "anon", "authenticated", "service_role"))
    assert "PASSWORD" not in roles.upper().replace("NOPASSWORD", "")
    schema_sql = (path / "schema.sql").read_text()
    assert "llm_usage" in schema_sql and 'CREATE SCHEMA "auth"' not in schema_sql


def test_round_trip_keeps_every_row_and_every_original_uuid(db_url, run_kit, tmp_path):
    grow(db_url, 95_000)
    shape_before = schema(db_url)
    links_before = dict((r[0], r[1:]) for r in query(db_url, "select id, provider_id, model_id from llm_usage"))
    ids_before = query(db_url, "select 'p', id, name from llm_providers union all select 'm', id, name from llm_models")
    path = take(run_kit, db_url, tmp_path)
    migrate_direct(db_url)
    query(db_url, "insert into llm_providers (name) values ('newco')")
    query(db_url, "insert into llm_models (name, provider_name) values ('newco-1', 'newco')")
    query(db_url, "insert into llm_usage (provider_name, model_name, agent_name) "
                  "select case when g % 2 = 0 then 'newco' else 'openai' end, "
                  "       case when g % 2 = 0 then 'newco-1' else 'gpt-4o-mini' end, 'after' "
                  "from generate_series(1, 1000) g")
    run = run_kit("rollback", str(path), "--db-url", db_url, "--json")
    assert run.code == 0, run.err
    assert run.json["usage_rows"] == 101_000 and run.json["phase"] == "before"
    assert query(db_url, "select count(*) from llm_usage") == [(101_000,)]
    assert schema(db_url) == shape_before
    # Original UUIDs are unchanged, and every row that had a link has the same one.
    assert set(ids_before) <= set(query(db_url, "select 'p', id, name from llm_providers union all "
                                                "select 'm', id, name from llm_models"))
    now = dict((r[0], r[1:]) for r in query(db_url, "select id, provider_id, model_id from llm_usage"))
    changed = [i for i, links in links_before.items() if now[i] != links]
    assert changed == []  # exactly as recorded, NULL links included
    assert run.json["linked_from_backup"] == sum(1 for p, m in links_before.values() if p or m)
    # Every row written since links to the provider and model its names name.
    assert query(db_url, """select count(*) from llm_usage u
        left join llm_models m on m.id = u.model_id left join llm_providers p on p.id = u.provider_id
        where u.agent_name = 'after'
          and (m.name is distinct from u.model_name or p.name is distinct from u.provider_name)""") == [(0,)]
    new_ids = query(db_url, "select p.id, m.id from llm_providers p join llm_models m on m.provider_id = p.id "
                            "where p.name = 'newco' and m.name = 'newco-1'")
    assert len(new_ids) == 1 and all(new_ids[0])
    status = run_kit("status", "--db-url", db_url, "--json").json
    assert status["pending"] == ["20261124120000"] and status["phase"] == "before"
    again = run_kit("push", "--via", "direct", "--db-url", db_url, "--json")
    assert again.code == 0 and again.json["applied"] == ["20261124120000"]


def test_full_restore_round_trip_gives_equal_rows_and_checksums(db_url, make_db, pg, run_kit, tmp_path):
    path = take(run_kit, db_url, tmp_path)
    bare = make_db("template0")  # no Supabase skeleton, and postgres is no superuser who could add it
    refused = run_kit("rollback", str(path), "--full", "--db-url", bare)
    assert refused.code == 4
    assert refused.err == (f"kit: error: 127.0.0.1:{pg.port} has no Supabase skeleton (no auth.users), and only a "
                           "superuser could add it: restore into a fresh Supabase project or a database made from the "
                           "skeleton (kit local up); nothing was changed\n")
    empty = make_db("kit_tpl_supabase")
    run = run_kit("rollback", str(path), "--full", "--db-url", empty, "--json")
    assert run.code == 0, run.err
    assert data(empty) == data(db_url)
    assert schema(empty) == schema(db_url)
    tables = ("llm_providers", "llm_models", "llm_usage", "agent_profiles")
    assert data(empty, tables) == data(db_url, tables)
    assert query(empty, "select count(*) from auth.users") == query(db_url, "select count(*) from auth.users")
    refused = run_kit("rollback", str(path), "--full", "--db-url", empty)
    assert refused.code == 4
    assert refused.err.startswith(f"kit: error: 127.0.0.1:{pg.port} already has ")
    assert refused.err.endswith(" table(s) outside Supabase's own schemas (public.agent_profiles, public.llm_models, "
                                "public.llm_providers and 1 more): a full restore goes into a fresh project or an "
                                "empty database; nothing was changed\n")


@pytest.mark.parametrize("damage", ["truncate", "edit"])
@pytest.mark.parametrize("name", ["data.sql", "database.dump", "llm_usage_links.tsv"])
def test_a_damaged_backup_is_refused_by_name_and_nothing_changes(damage, name, db_url, run_kit, tmp_path):
    path = take(run_kit, db_url, tmp_path)
    migrate_direct(db_url)
    target = path / name
    if damage == "truncate":
        with open(target, "r+b") as handle:
            handle.truncate(target.stat().st_size // 2)
    else:
        raw = bytearray(target.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        target.write_bytes(bytes(raw))
    before = (schema(db_url), data(db_url))
    for argv in (("rollback", str(path), "--db-url", db_url), ("backup", "verify", str(path))):
        run = run_kit(*argv)
        assert run.code == 7
        assert run.err.splitlines()[-1] == (f"kit: error: {name} in {path} does not match its checksum: the backup "
                                            "was altered or truncated; take a new backup")
    assert (schema(db_url), data(db_url)) == before


def test_an_incomplete_backup_is_never_used(db_url, run_kit, tmp_path):
    path = take(run_kit, db_url, tmp_path)
    (path / "INCOMPLETE").write_text("")
    migrate_direct(db_url)
    run = run_kit("rollback", str(path), "--db-url", db_url)
    assert run.code == 7
    assert run.err == (f"kit: error: {path} is an incomplete backup (it was interrupted); it is never used for a "
                       "rollback: take a new backup\n")


def test_backup_verify_restores_into_a_throwaway_server(db_url, run_kit, tmp_path):
    path = take(run_kit, db_url, tmp_path)
    run = run_kit("backup", "verify", str(path), "--json")
    assert run.code == 0, run.err
    names = [c["name"] for c in run.json["checks"]]
    assert names == ["checksums", "pg_restore --list", "rehearsal restore"]
    assert run.json["checks"][2]["detail"].startswith(
        "5 table(s), 5,089 rows, every count equal to the snapshot's, on PostgreSQL ")


def test_a_backup_whose_links_are_csv_rolls_back_exactly(db_url, run_kit, tmp_path):
    """Backups taken before the links file became COPY text hold llm_usage_links.csv (NULL as empty)."""
    links_before = dict((r[0], r[1:]) for r in query(db_url, "select id, provider_id, model_id from llm_usage"))
    path = take(run_kit, db_url, tmp_path)
    tsv = path / "llm_usage_links.tsv"
    csv = b"".join(b",".join(b"" if f == b"\\N" else f for f in line.split(b"\t")) + b"\n"
                   for line in tsv.read_bytes().splitlines())
    tsv.unlink()
    (path / "llm_usage_links.csv").write_bytes(csv)
    m = json.loads((path / "manifest.json").read_text())
    m["maps"]["llm_usage"] = "llm_usage_links.csv"
    del m["files"]["llm_usage_links.tsv"]
    m["files"]["llm_usage_links.csv"] = {"bytes": len(csv), "sha256": manifest.sha256(path / "llm_usage_links.csv")}
    (path / "manifest.json").write_text(json.dumps(m))
    migrate_direct(db_url)
    run = run_kit("rollback", str(path), "--db-url", db_url, "--json")
    assert run.code == 0, run.err
    now = dict((r[0], r[1:]) for r in query(db_url, "select id, provider_id, model_id from llm_usage"))
    assert now == links_before and sum(1 for p, m in now.values() if p or m) > 1000


def test_rollback_waits_politely_then_refuses_and_changes_nothing(db_url, run_kit, tmp_path, monkeypatch):
    from kit.rollback import in_place as rollback

    path = take(run_kit, db_url, tmp_path)
    migrate_direct(db_url)
    before = (schema(db_url), data(db_url))
    monkeypatch.setattr(rollback, "WAIT_S", 1.0)
    monkeypatch.setattr(rollback.in_place, "__defaults__", (1.0, None))
    with psycopg.connect(db_url) as holder:
        holder.execute("select count(*) from llm_usage")  # an open transaction holding ACCESS SHARE
        pid = holder.info.backend_pid
        run = run_kit("rollback", str(path), "--db-url", db_url, "--json")
        holder.rollback()
    assert run.code == 4
    assert run.err.startswith("kit: error: could not lock the LLM tables in 1 s (")
    assert f"held by pid {pid} (no name, idle in transaction)" in run.err
    assert (schema(db_url), data(db_url)) == before


def test_a_backup_taken_after_the_migration_cannot_roll_it_back(db_url, run_kit, tmp_path):
    migrate_direct(db_url)
    path = take(run_kit, db_url, tmp_path)
    run = run_kit("rollback", str(path), "--db-url", db_url)
    assert run.code == 7
    assert run.err == (f"kit: error: {path} was taken after the migration and holds no UUID maps: roll back with a "
                       "backup taken before it (kit deploy takes one)\n")


def test_platform_backups_are_recorded_when_configured(db_url, run_kit, tmp_path, clean_env):
    """The Management API is a stand-in (tests/standin.py) answering GET /v1/projects/{ref}/database/backups."""
    answer = {"region": "eu-west-1", "pitr_enabled": True, "walg_enabled": True,
              "backups": [{"is_physical_backup": True, "status": "COMPLETED", "inserted_at": "2026-11-24T00:00:00Z"}]}
    with serve(lambda r: Reply(200, answer) if r.path == "/v1/projects/abcdefghijklmnopqrst/database/backups"
               else Reply(404, {"message": "no"})) as api:
        clean_env.setenv("SUPABASE_API_URL", api.url)
        clean_env.setenv("SUPABASE_ACCESS_TOKEN", "kit-test-token-" + "7" * 16)
        clean_env.setenv("SUPABASE_PROJECT_REF", "abcdefghijklmnopqrst")
        path = take(run_kit, db_url, tmp_path)
    assert manifest.load(path).platform == answer
    assert "kit-test-token" not in (path / "manifest.json").read_text()


def test_an_unwritable_backup_folder_is_one_line(db_url, run_kit, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    run = run_kit("backup", "--db-url", db_url, "--out", str(blocker))
    assert run.code == 2
    assert run.err == (f"kit: error: cannot write a backup under {blocker}: Not a directory; pass --out DIR or set "
                       "KIT_BACKUP_DIR to a writable folder\n")


def test_a_full_disk_fails_the_backup_and_marks_it_incomplete(db_url, run_kit, tmp_path):
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(tiny)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        run = run_kit("backup", "--db-url", db_url, "--out", str(tiny), "--json")
        assert run.code == 7
        folder = next(next(tiny.iterdir()).iterdir())
        assert re.fullmatch(r"kit: error: writing (data\.sql|database\.dump|the backup) failed: No space left on "
                            rf"device; {re.escape(str(folder))} is marked incomplete: free space or pass --out DIR, "
                            r"then take the backup again\n", run.err), run.err
        assert (folder / "INCOMPLETE").exists() and not (folder / "manifest.json").exists()
    finally:
        subprocess.run(["umount", str(tiny)], check=True)


def test_an_older_client_than_the_server_is_named(db_url, run_kit, pg, clean_env):
    old = Path("/usr/lib/postgresql/15/bin")
    if pg.version <= 15 or not (old / "pg_dump").exists():
        pytest.skip("needs a PostgreSQL 15 client and a newer server")
    clean_env.setenv("KIT_PG_BIN", str(old))
    run = run_kit("backup", "--db-url", db_url)
    assert run.code == 6
    assert run.err.startswith("kit: error: pg_dump (PostgreSQL) 15.")
    assert f"is older than the server (PostgreSQL {pg.version}." in run.err


def test_debian_version_strings_compare_by_major(monkeypatch, settings_for, db_url):
    """Debian's pg_dump says "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": same major is fine."""
    from kit.errors import ToolMissing
    from kit.local import pgtools

    monkeypatch.setattr(pgtools, "client_version", lambda s: "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)")
    s = settings_for(db_url)
    assert pgtools.require_client_for(s, "15.18 (Debian 15.18-0+deb12u1)").startswith("pg_dump (PostgreSQL) 15.18")
    with pytest.raises(ToolMissing):
        pgtools.require_client_for(s, "17.4")


def test_a_backup_taken_while_rows_arrive_restores_to_its_own_counts(db_url, run_kit, tmp_path):
    """Every dump and the manifest's counts share one snapshot: rows inserted meanwhile are in none of them."""
    writer = TeamWriter(db_url)
    writer.start()
    try:
        path = take(run_kit, db_url, tmp_path / "out")
        verified = run_kit("backup", "verify", str(path), "--json")
    finally:
        writer.stop.set()
        writer.join(30)
    assert writer.errors == [] and writer.inserted > 0
    assert verified.code == 0, verified.out + verified.err
    counted = json.loads((path / "manifest.json").read_text())["row_counts"]["public.llm_usage"]
    assert counted < query(db_url, "select count(*) from llm_usage")[0][0]


@pytest.mark.parametrize("cut", [True, False])
def test_the_links_file_is_the_same_with_or_without_cut(cut, tmp_path, monkeypatch):
    """llm_usage's links are picked by `cut -f` in another process when the system has it, else by the
    kit itself: the same COPY text either way (NULL as \\N, escapes kept), the data passing on unchanged."""
    from kit.backup import data as backup_data

    if not cut:
        monkeypatch.setattr(backup_data, "CUT", None)
    rows = [b"1\t\\N\t\\N\topenai\tgpt-4o\t{}\n", b"2\taaaa-1\tbbbb-2\tx\\ty\tm\t{\"a\": \"b\\\\N\"}\n",
            b"3\t\\N\tcccc-3\topenai\t\\N\t\\N\n"] * 3000
    stream = (b"SET x = 1;\n--\n-- Data for Name: llm_usage; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\n"
              b'COPY "public"."llm_usage" ("id", "provider_id", "model_id", "provider_name", "model_name", '
              b'"metadata") FROM stdin;\n' + b"".join(rows) + b"\\.\n\n")
    split = backup_data.Split(tmp_path, lambda n, done=False: None, links=tmp_path / "links.tsv")
    for start in range(0, len(stream), 4097):  # chunks that cut rows and lines anywhere
        split.feed(stream[start:start + 4097])
    assert split.close() == {"public.llm_usage": 9000}
    assert (tmp_path / "links.tsv").read_bytes() == b"1\t\\N\t\\N\n2\taaaa-1\tbbbb-2\n3\t\\N\tcccc-3\n" * 3000
    assert (tmp_path / "data.sql").read_bytes() == backup_data.REPLICA + stream
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.sql", "links.tsv"]


@pytest.mark.parametrize("cut", [True, False])
def test_partitions_with_their_columns_in_other_orders_give_one_links_file(cut, tmp_path, monkeypatch):
    """A partitioned llm_usage keyed by (created_at, id): each leaf partition's rows are picked in the file's
    column order, with cut where the partition's columns stand in that order and by the kit where an
    attached partition has them elsewhere; an empty partition counts too, and a table that is not
    asked for passes untouched."""
    from kit.backup import data as backup_data

    if not cut:
        monkeypatch.setattr(backup_data, "CUT", None)
    block = ("-- Data for Name: {t}; Type: TABLE DATA; Schema: {s}; Owner: postgres\n--\n\nCOPY \"{s}\".\"{t}\" "
             "({cols}) FROM stdin;\n").format
    first = block(s="public", t="llm_usage_a", cols='"created_at", "id", "provider_id", "model_id", "agent_name"')
    attached = block(s="archive", t="llm_usage_b", cols='"model_id", "agent_name", "id", "created_at", "provider_id"')
    empty = block(s="public", t="llm_usage_c", cols='"created_at", "id", "provider_id", "model_id", "agent_name"')
    other = block(s="public", t="notes", cols='"id", "provider_id", "model_id"')
    stream = (first.encode() + b"2026-01-01\t1\taaaa\t\\N\tx\n2026-01-02\t2\t\\N\t\\N\ty\n" * 2000 + b"\\.\n\n"
              + attached.encode() + b"bbbb\tz\t3\t2026-02-01\tcccc\n" * 2000 + b"\\.\n\n"
              + empty.encode() + b"\\.\n\n" + other.encode() + b"9\tdddd\teeee\n\\.\n\n")
    split = backup_data.Split(tmp_path, lambda n, done=False: None, links=tmp_path / "links.tsv",
                              tables=["public.llm_usage_a", "archive.llm_usage_b", "public.llm_usage_c"],
                              columns=["created_at", "id", "provider_id", "model_id"])
    for start in range(0, len(stream), 5003):
        split.feed(stream[start:start + 5003])
    assert split.close() == {"public.llm_usage_a": 4000, "archive.llm_usage_b": 2000, "public.llm_usage_c": 0,
                             "public.notes": 1}
    assert (tmp_path / "links.tsv").read_bytes() == (
        b"2026-01-01\t1\taaaa\t\\N\n2026-01-02\t2\t\\N\t\\N\n" * 2000 + b"2026-02-01\t3\tcccc\tbbbb\n" * 2000)
    assert (tmp_path / "data.sql").read_bytes() == backup_data.REPLICA + stream


def test_a_links_table_missing_from_the_dump_fails_the_backup(tmp_path):
    """The links file must hold every usage row: a partition the dump does not hold is an error, not a
    shorter file."""
    from kit.backup import data as backup_data
    from kit.errors import BackupError

    split = backup_data.Split(tmp_path, lambda n, done=False: None, links=tmp_path / "links.tsv",
                              tables=["public.llm_usage_a", "public.llm_usage_b"])
    split.feed(b'COPY "public"."llm_usage_a" ("id", "provider_id", "model_id") FROM stdin;\n1\t\\N\t\\N\n\\.\n')
    with pytest.raises(BackupError, match=r"^the dump holds no rows of public.llm_usage_b, so links.tsv would miss"):
        split.close()
