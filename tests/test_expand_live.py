"""The change in two steps while old and new clients keep working: `kit deploy --expand`, then `kit deploy` (the
contract) once pg_stat_statements no longer shows the old ones, on the kit's own folder (the expand and contract
files staged in place of the one-step file). Four clients run on their own connections throughout: an old
agent inserting with UUIDs and names, an old agent inserting with UUIDs only, an old report reading model_id,
and a new agent inserting by name."""

import pytest

from tests import snapshot
from tests.helpers import STATES, grow, history_rows, query, run_file
from tests.writers import Client, start

pytestmark = pytest.mark.majors

OLD_BOTH = ("insert into llm_usage (provider_id, model_id, provider_name, model_name, agent_name) "
            "select m.provider_id, m.id, p.name, m.name, 'old-both' from llm_models m "
            "join llm_providers p on p.id = m.provider_id where m.name = 'gpt-4o' returning id")
OLD_IDS = ("insert into llm_usage (provider_id, model_id, agent_name) select m.provider_id, m.id, 'old-ids' "
           "from llm_models m where m.name = 'claude-sonnet-4' returning id")
OLD_READER = "select model_id, count(*) from llm_usage where created_at > now() - interval '1 minute' group by 1"
NEW = ("insert into llm_usage (provider_name, model_name, agent_name) values ('openai', 'gpt-4o-mini', 'new') "
       "returning id")


@pytest.fixture(autouse=True)
def postgres_reads_all_stats(pg):
    query(pg.admin_url, "grant pg_read_all_stats to postgres")
    yield
    query(pg.admin_url, "revoke pg_read_all_stats from postgres")


def missing(url: str, ids: list[int]) -> int:
    return query(url, "select count(*) from unnest(%s::bigint[]) i where not exists "
                      "(select 1 from llm_usage u where u.id = i)", (ids,))[0][0]


def test_old_clients_keep_working_through_the_expand_and_the_contract_waits_for_them(make_db, run_kit, in_tmp):
    url = make_db()
    run_file(url, (STATES / "nullable_names.sql").read_text())  # the plan's state: old agents may send no names
    grow(url, 20_000)
    query(url, "select extensions.pg_stat_statements_reset()")
    old = [Client(url, OLD_BOTH), Client(url, OLD_IDS), Client(url, OLD_READER, pause=0.02)]
    new = Client(url, NEW)
    start(*old, new)
    expand = run_kit("deploy", "--expand", "--db-url", url, "--json", "--no-lint")
    assert expand.code == 0, expand.err
    assert expand.json["phase"] == "expanded"
    assert [c.errors for c in (*old, new)] == [[], [], [], []]
    assert query(url, "select count(*) from llm_usage") >= [(20_000,)]
    assert [v for v, _, _ in history_rows(url)] == ["20240101000000", "20261124120001"]

    status = run_kit("status", "--db-url", url, "--json")
    assert status.json["phase"] == "expanded"
    assert status.json["pending"] == ["20261124120002"]
    listed = status.json["legacy_statements"]
    assert sorted(s["query"] for s in listed) == [
        "insert into llm_usage (provider_id, model_id, agent_name) select m.provider_id, m.id, $1 from llm_models m "
        "where m.name = $2 returning id",
        "insert into llm_usage (provider_id, model_id, provider_name, model_name, agent_name) select m.provider_id, "
        "m.id, p.name, m.name, $1 from llm_models m join llm_providers p on p.id = m.provider_id where m.name = $2 "
        "returning id",
        "select model_id, count(*) from llm_usage where created_at > now() - interval $1 group by 1"]
    assert all(s["calls"] > 0 and s["role"] == "postgres" for s in listed)
    measured = (f"\nexpand: push {expand.json['steps'][2]['seconds']:.2f}s, deploy {sum(s['seconds'] for s in expand.json['steps']):.2f}s; "
          f"old-both {len(old[0].ids)}, old-ids {len(old[1].ids)}, reader {old[2].calls}, new {len(new.ids)}")
    text = run_kit("status", "--db-url", url)
    assert "phase     expanded" in text.out
    assert "kit deploy (the contract) refuses while they are listed" in text.out

    schema, history = snapshot.schema(url), history_rows(url)
    refused = run_kit("deploy", "--db-url", url, "--json", "--no-lint")
    assert refused.code == 4
    assert refused.json["error"].startswith("3 statement(s) in pg_stat_statements still use the UUID columns, and "
                                            "their clients will fail once the contract drops them: [")
    assert refused.json["steps"][1]["status"] == "skipped"  # no backup, no push
    assert (snapshot.schema(url), history_rows(url)) == (schema, history)

    for client in old:
        client.halt()
    query(url, "select extensions.pg_stat_statements_reset()")
    contract = run_kit("deploy", "--db-url", url, "--json", "--no-lint")
    new.halt()
    assert contract.code == 0, contract.err
    assert contract.json["phase"] == "migrated"
    assert [c.errors for c in (*old, new)] == [[], [], [], []]
    written = old[0].ids + old[1].ids + new.ids
    assert len(new.ids) > 50 and missing(url, written) == 0
    assert query(url, "select count(*) from llm_usage where id = any(%s) and (model_name, provider_name) "
                      "is distinct from ('claude-sonnet-4', 'anthropic')", (old[1].ids,)) == [(0,)]
    assert [v for v, _, _ in history_rows(url)] == ["20240101000000", "20261124120001", "20261124120002"]
    verify = run_kit("verify", "--db-url", url, "--json")
    assert verify.code == 0 and all(c["ok"] for c in verify.json["checks"])
    assert run_kit("status", "--db-url", url, "--json").json["pending"] == []
    print(measured + f"\ncontract: push {contract.json['steps'][2]['seconds']:.2f}s; rows {query(url, 'select count(*) from llm_usage')}; "
          f"old-both {len(old[0].ids)}, old-ids {len(old[1].ids)}, reader {old[2].calls}, new {len(new.ids)}")
