"""manifest.json read into kit.backup.contents.Manifest and written back: the same JSON, key for key and in order."""

import json

from kit.backup import manifest
from kit.backup.contents import Manifest, Rehearsal

NEW = {
    "complete": True, "target": "local", "database": "postgresql://postgres:***@127.0.0.1:5432/app",
    "server": "17.2", "client": "pg_dump (PostgreSQL) 18.1", "started": "2026-11-24T12:00:00Z",
    "finished": "2026-11-24T12:00:03Z",
    "snapshot": {"id": "00000003-1", "taken_at": "2026-11-24T12:00:00Z", "wal_lsn": "0/1", "how": "export"},
    "archive": "database.dump", "jobs": 1, "compress": 1, "extensions": ["plpgsql"], "seconds": 3.1, "bytes": 20,
    "mb_per_s": 0.0, "files": {"data.sql": {"bytes": 20, "sha256": "ab"}},
    "shape": [["column", "llm_usage", "id", "not null", "bigint"]], "catalog": {"tables": {}, "foreign_keys": []},
    "maps": {"llm_providers": {"p1": "openai"}, "llm_models": {"m1": {"name": "gpt", "provider_id": "p1"}},
             "llm_usage": "llm_usage_links.tsv", "llm_usage_key": [["id", "bigint"]],
             "llm_usage_columns": ["id", "provider_id", "model_id"],
             "llm_usage_names": [["provider_name", "text"], ["model_name", "text"]], "llm_usage_from": "dump",
             "llm_usage_tables": ["public.llm_usage"]},
    "row_counts": {"public.llm_usage": 5},
    "identity": {"system_identifier": 7, "database": "app", "database_oid": 5, "host": "127.0.0.1", "port": 5432,
                 "user": "postgres", "project_ref": None, "target": None, "url_from": "--db-url"},
    "platform": None,
}
# As an older kit wrote it: no identity, no key or column order in the maps, a key this kit does not know.
OLD = {"complete": True, "target": "local", "database": "postgresql://postgres:***@127.0.0.1:5432/app",
       "server_version": "15.4", "files": {"data.sql": {"bytes": 20, "sha256": "ab"}}, "shape": [],
       "maps": {"llm_providers": {}, "llm_models": {}, "llm_usage": "llm_usage_links.csv"},
       "row_counts": {"public.llm_usage": 0}}


def test_a_manifest_of_this_kit_and_an_older_one_are_written_back_exactly():
    for data in (NEW, OLD):
        again = Manifest.from_json(json.loads(json.dumps(data))).to_json()
        assert json.dumps(again) == json.dumps(data)


def test_what_the_kit_reads_from_an_older_manifest():
    old = Manifest.from_json(OLD)
    assert old.identity is None and old.archive_name == "database.dump" and old.jobs is None
    assert old.require_maps().usage_key is None and old.require_maps().usage_file == "llm_usage_links.csv"
    assert old.extra == {"server_version": "15.4"}


def test_a_rehearsal_set_after_loading_goes_last_and_nothing_else_moves(tmp_path):
    data = Manifest.from_json(NEW)
    data.rehearsal = Rehearsal(True, "PostgreSQL 17.2 (17)", "2026-11-24T12:01:00Z", "1 table(s)")
    manifest.save(tmp_path, data)
    written = json.loads((tmp_path / manifest.NAME).read_text())
    assert list(written) == [*NEW, "rehearsal"]
    assert {k: v for k, v in written.items() if k != "rehearsal"} == NEW
    assert written["rehearsal"] == {"ok": True, "server": "PostgreSQL 17.2 (17)", "at": "2026-11-24T12:01:00Z",
                                    "detail": "1 table(s)"}
