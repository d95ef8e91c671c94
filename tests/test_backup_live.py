"""`kit backup` on a database being written to: one snapshot, read once, verified exactly; --jobs, list, prune."""

import json
import re
import time
from pathlib import Path

import pytest

from kit import settings as settings_mod
from kit.local import pgtools
from tests.helpers import ROOT, grow, query, run_file, take
from tests.snapshot import data, schema
from tests.writers import Writers

pytestmark = pytest.mark.majors  # scripts/test.sh runs these on every major


def _usage_block(path: Path) -> list[bytes]:
    """The llm_usage rows of data.sql, as COPY text lines."""
    text = (path / "data.sql").read_bytes()
    start = text.index(b'\nCOPY "public"."llm_usage" (')
    start = text.index(b"\n", start + 1) + 1
    return text[start:text.index(b"\n\\.\n", start - 1) + 1].splitlines()


def _settled_seq_scans(admin_url: str) -> int:
    return _settled(admin_url, "select seq_scan from pg_stat_user_tables where relid = 'public.llm_usage'::regclass")


def _settled(admin_url: str, sql: str) -> int:
    """Backends flush their statistics at most once a second; wait until two reads agree."""
    last = -1
    for _ in range(20):
        time.sleep(1.1)
        now = query(admin_url, sql)[0][0]
        if now == last:
            return now
        last = now
    return last


def test_backup_under_writes_is_one_snapshot_read_once_and_verifies_exactly(db_url, pg, run_kit, tmp_path):
    grow(db_url, 60_000)
    admin = pg.admin_url.rsplit("/", 1)[0] + "/" + db_url.rsplit("/", 1)[1]
    with Writers(db_url, 2) as writers:
        before = query(db_url, "select count(*) from llm_usage")[0][0]
        scans_before = _settled_seq_scans(admin)
        path = take(run_kit, db_url, tmp_path)
        scans_after = _settled_seq_scans(admin)
    assert writers.errors == []
    m = json.loads((path / "manifest.json").read_text())
    rows = m["row_counts"]["public.llm_usage"]
    after = query(db_url, "select count(*) from llm_usage")[0][0]
    assert before <= rows < after  # the writers added rows during and after the snapshot
    # Everything that describes rows is that one snapshot.
    block = _usage_block(path)
    assert len(block) == rows
    linked = sum(1 for line in block if line.split(b"\t")[1] != b"\\N" or line.split(b"\t")[2] != b"\\N")
    # The links file holds every row of the dump, with its links or NULLs.
    links = (path / "llm_usage_links.tsv").read_bytes().splitlines()
    assert len(links) == rows and sum(1 for line in links if line.split(b"\t")[1:] != [b"\\N", b"\\N"]) == linked > 20_000
    assert m["maps"]["llm_usage_key"] == [["id", "bigint"]]
    assert m["snapshot"]["how"] == "pg_export_snapshot() in a REPEATABLE READ transaction, pg_dump --snapshot"
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", m["snapshot"]["wal_lsn"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", m["snapshot"]["taken_at"])
    assert m["started"] <= m["snapshot"]["taken_at"][:19] + "Z" <= m["finished"]
    # Production was read once: pg_dump's one scan of llm_usage, no count(*), no second dump; the links
    # file comes from the dump's own rows.
    assert scans_after - scans_before == 1
    assert m["maps"]["llm_usage_from"] == "dump"
    with Writers(db_url, 2) as writers:
        run = run_kit("backup", "verify", str(path), "--json")
    assert run.code == 0, run.err
    rehearsal = run.json["checks"][2]
    assert rehearsal["ok"] and f"{sum(m['row_counts'].values()):,} rows, every count equal" in rehearsal["detail"]
    assert json.loads((path / "manifest.json").read_text())["rehearsal"]["server"].startswith("PostgreSQL ")
    assert writers.errors == []


def test_jobs_dumps_a_directory_archive_from_the_snapshot_that_restores(db_url, make_db, pg, run_kit, tmp_path):
    grow(db_url, 20_000)
    path = take(run_kit, db_url, tmp_path, "--jobs", "2")
    m = json.loads((path / "manifest.json").read_text())
    assert m["archive"] == "database.dir" and m["jobs"] == 2 and not (path / "database.dump").exists()
    assert "database.dir/toc.dat" in m["files"]
    assert {oct(p.stat().st_mode & 0o777) for p in (path / "database.dir").iterdir()} == {"0o600"}
    run = run_kit("backup", "verify", str(path), "--json")
    assert run.code == 0, run.err
    assert "25,089 rows, every count equal" in run.json["checks"][2]["detail"]
    empty = make_db("template0")
    s = settings_mod.load({"db_url": empty}, environ={}, cwd=ROOT)
    pgtools.restore_archive(s, pg.admin(empty.rsplit("/", 1)[1]), path / "database.dir", ["--no-owner"], jobs=2)
    assert data(empty) == data(db_url) and schema(empty) == schema(db_url)


def test_compress_gzips_the_archive_that_still_verifies_and_a_bad_level_is_refused(db_url, run_kit, tmp_path):
    """The archive is gzip level 1 unless --compress LEVEL says otherwise; 0 stores it uncompressed."""
    plain = take(run_kit, db_url, tmp_path / "plain", "--compress", "0")
    packed = take(run_kit, db_url, tmp_path / "packed")
    assert json.loads((plain / "manifest.json").read_text())["compress"] == 0
    assert json.loads((packed / "manifest.json").read_text())["compress"] == 1
    assert (packed / "database.dump").stat().st_size * 3 < (plain / "database.dump").stat().st_size

    def unkeyed(path):  # the restrict lines carry a key per run
        return re.sub(rb"(?m)^\\(un)?restrict \S+$", b"", (path / "data.sql").read_bytes())

    assert unkeyed(packed) == unkeyed(plain)
    for path in (plain, packed):
        run = run_kit("backup", "verify", str(path), "--json")
        assert run.code == 0, run.err
    refused = run_kit("backup", "--db-url", db_url, "--out", str(tmp_path / "bad"), "--compress", "10")
    assert (refused.code, refused.err) == (2, "kit: error: --compress 10 is not a gzip level: pass 0 (none) to 9\n")
    assert not (tmp_path / "bad").exists()


def test_a_partitioned_usage_table_is_read_once_under_writes(db_url, pg, run_kit, tmp_path):
    """llm_usage partitioned by month and keyed by (id, created_at) (tests/states/matrix/usage_partitioned.sql),
    two writers inserting: each partition is scanned once (pg_dump's COPY) and the links file holds exactly
    the dump's rows of every partition."""
    run_file(db_url, (ROOT / "tests/states/matrix/usage_partitioned.sql").read_text())
    admin = pg.admin_url.rsplit("/", 1)[0] + "/" + db_url.rsplit("/", 1)[1]
    scans = ("select coalesce(sum(seq_scan), 0) from pg_stat_user_tables where relid in "
             "(select relid from pg_partition_tree('public.llm_usage') where isleaf)")
    with Writers(db_url, 2) as writers:
        before = _settled(admin, scans)
        path = take(run_kit, db_url, tmp_path)
        after = _settled(admin, scans)
    assert writers.errors == []
    m = json.loads((path / "manifest.json").read_text())
    parts = m["maps"]["llm_usage_tables"]
    assert parts == ["public.llm_usage_2026_10", "public.llm_usage_2026_11", "public.llm_usage_2026_12",
                     "public.llm_usage_default"]
    assert after - before == len(parts)
    assert m["maps"]["llm_usage_from"] == "dump" and m["maps"]["llm_usage_columns"] == ["id", "provider_id",
                                                                                      "model_id", "created_at"]
    links = (path / "llm_usage_links.tsv").read_bytes().splitlines()
    assert len(links) == sum(m["row_counts"][p] for p in parts) > 5000
    assert len({line.split(b"\t")[0] for line in links}) == len(links)


def test_each_part_is_one_plain_line_with_its_size_and_speed_off_a_terminal(db_url, run_kit, tmp_path):
    run = run_kit("backup", "--db-url", db_url, "--out", str(tmp_path))
    assert run.code == 0, run.err
    parts = re.findall(r"^\.\.\. ([\w.]+): [\d,.]+ MB in [\d.]+ s \([\d,.]+ MB/s\)$", run.err, re.M)
    assert parts == ["data.sql", "database.dump", "roles.sql", "schema.sql", "history.sql"]  # roles.sql beside the dump


def test_list_and_prune_keep_the_newest_per_database_and_the_newest_complete_one(make_db, run_kit, tmp_path):
    a, b = make_db(), make_db()
    a_paths = [take(run_kit, a, tmp_path) for _ in range(3)]
    b_paths = [take(run_kit, b, tmp_path) for _ in range(2)]
    (a_paths[2] / "manifest.json").unlink()
    (a_paths[2] / "INCOMPLETE").write_text(json.dumps({"database": a}))  # the newest of a did not finish
    listed = run_kit("backup", "list", "--out", str(tmp_path), "--json")
    assert listed.code == 0, listed.err
    rows = [(r["database"], r["path"], r["complete"]) for r in listed.json["backups"]]
    expected = [(a, str(p), p != a_paths[2]) for p in a_paths] + [(b, str(p), True) for p in b_paths]
    assert sorted(rows) == sorted(expected)
    assert all(r["bytes"] > 10_000 for r in listed.json["backups"])
    text = run_kit("backup", "list", "--out", str(tmp_path)).out
    assert text.splitlines()[0].split() == ["database", "taken", "state", "size", "path"]
    assert "INCOMPLETE" in text and a in text
    pruned = run_kit("backup", "prune", "--keep", "1", "--out", str(tmp_path), "--json")
    assert pruned.code == 0, pruned.err
    assert sorted(r["path"] for r in pruned.json["deleted"]) == sorted([str(a_paths[0]), str(b_paths[0])])
    assert sorted(p.name for p in tmp_path.glob("*/*")) == sorted(
        p.name for p in (a_paths[1], a_paths[2], b_paths[1]))
    assert run_kit("rollback", str(a_paths[1]), "--full", "--db-url", make_db("kit_tpl_supabase"), "--json").code == 0
    refused = run_kit("backup", "prune", "--keep", "0", "--out", str(tmp_path))
    assert refused.code == 2
    assert refused.err == "kit: error: --keep 0 would delete every backup: keep at least 1\n"


def test_prune_counts_one_database_reached_by_two_urls_as_one(db_url, run_kit, tmp_path):
    """A local default gets a new port at every start, so one database's backups carry different URLs (here
    127.0.0.1 and localhost): prune groups them by the cluster and oid their manifests record."""
    older = take(run_kit, db_url, tmp_path)
    newer = take(run_kit, db_url.replace("127.0.0.1", "localhost", 1), tmp_path)
    assert older.parent != newer.parent  # filed under two labels
    pruned = run_kit("backup", "prune", "--keep", "1", "--out", str(tmp_path), "--json")
    assert pruned.code == 0, pruned.err
    assert [r["path"] for r in pruned.json["deleted"]] == [str(older)]
    assert [p for p in tmp_path.glob("*/*") if p.is_dir()] == [newer]


def test_a_needed_extension_no_server_has_is_one_line(db_url, pg, run_kit, tmp_path):
    path = take(run_kit, db_url, tmp_path)
    m = json.loads((path / "manifest.json").read_text())
    m["extensions"] = [*m["extensions"], "postgis_kit_test"]
    (path / "manifest.json").write_text(json.dumps(m))
    run = run_kit("backup", "verify", str(path))
    assert run.code == 7
    assert run.err.splitlines()[-1] == (f"kit: error: the backup needs the extension postgis_kit_test, which no "
                                        f"PostgreSQL server here has (PostgreSQL {pg.version} lacks it): install a "
                                        "server with it and verify again")


def test_an_interrupted_backup_names_its_folder_and_leaves_it_marked(db_url, run_kit, tmp_path, monkeypatch):
    """Ctrl-C in the middle of the dump: exit 130, one line naming the folder, which keeps INCOMPLETE."""
    from kit.backup import data as backup_data

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(backup_data, "dump_and_split", interrupted)
    run = run_kit("backup", "--db-url", db_url, "--out", str(tmp_path))
    folders = list(tmp_path.glob("*/*"))
    assert len(folders) == 1 and (folders[0] / "INCOMPLETE").exists()
    assert (run.code, run.err.splitlines()[-1]) == (130, f"kit: error: interrupted; {folders[0]} is marked incomplete "
                                                         "(the database was only read): take the backup again")


@pytest.mark.parametrize("keep, message", [("0", "--keep 0 would delete every backup: keep at least 1"),
                                           ("-2", "--keep -2 is not a number of backups to keep: pass 1 or more")])
def test_prune_refuses_a_keep_below_one_by_what_it_means(keep, message, run_kit, tmp_path):
    run = run_kit("backup", "prune", "--keep", keep, "--out", str(tmp_path))
    assert (run.code, run.err) == (2, f"kit: error: {message}\n")
