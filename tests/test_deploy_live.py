"""`kit deploy` while two writers insert usage rows for the whole deploy, then a rollback from its backup while
they still insert: no insert fails, and no row written at any time is lost. The longest insert is measured
by benchmarks/backup.py (no timed assertions in tests)."""

from pathlib import Path

from tests.helpers import grow, query
from tests.writers import Writers


def _missing(url: str, ids: list[int]) -> int:
    return query(url, "select count(*) from unnest(%s::bigint[]) i where not exists "
                      "(select 1 from llm_usage u where u.id = i)", (ids,))[0][0]


def test_deploy_under_live_writes_loses_no_row_and_a_rollback_keeps_the_later_rows(db_url, run_kit, in_tmp):
    grow(db_url, 20_000)
    with Writers(db_url, 2) as during:
        # grow wrote a third of the rows with their UUIDs, as an older client does: that is known here
        run = run_kit("deploy", "--db-url", db_url, "--json", "--allow-legacy-statements")
    assert run.code == 0, run.err
    assert run.json["phase"] == "migrated"
    assert during.errors == []  # how long they waited is measured by benchmarks/backup.py, not asserted here
    assert len(during.ids) > 50 and _missing(db_url, during.ids) == 0
    backup_rows = query(db_url, "select count(*) from llm_usage where id <= %s", (during.ids[0],))[0][0]
    assert backup_rows >= 25_000
    with Writers(db_url, 2) as rolling:
        back = run_kit("rollback", run.json["backup"], "--db-url", db_url, "--json")
    assert back.code == 0, back.err
    assert back.json["phase"] == "before"
    assert rolling.errors == []
    # Every row written during the deploy and during the rollback is there. Rows the backup holds get
    # exactly the links it recorded (the writers' rows: none); rows written after the backup and before
    # the rollback are linked through their names.
    assert _missing(db_url, during.ids + rolling.ids) == 0
    links = (Path(run.json["backup"]) / "llm_usage_links.tsv").read_bytes()
    recorded = {int(line.split(b"\t")[0]) for line in links.splitlines()}
    later = [i for i in during.ids if i not in recorded]
    assert later and len(later) < len(during.ids)
    assert query(db_url, "select count(*) from llm_usage where id = any(%s) and (provider_id is null or "
                         "model_id is null)", (later,)) == [(0,)]
