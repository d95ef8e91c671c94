"""An old supabase-py client through the two steps: its payload with model_id is accepted after the expand and
refused (PGRST204) only after the contract. PostgREST cannot run here: tests/standin_postgrest.py answers as
it does (each request one transaction as service_role, an unknown column 400 PGRST204), backed by the real
test database, whose columns it reads on every request as PostgREST does after `notify pgrst`."""

import pytest
from postgrest.exceptions import APIError

from supabase import create_client
from tests.helpers import KEY, query, rest_env
from tests.standin import serve
from tests.standin_postgrest import postgrest_route

pytestmark = pytest.mark.majors


def old_payloads(url: str) -> list[dict]:
    model_id, provider_id = query(url, "select id::text, provider_id::text from llm_models where name = 'gpt-4o'")[0]
    return [{"agent_name": "old-py", "provider_id": provider_id, "model_id": model_id},  # UUIDs only
            {"agent_name": "old-py", "provider_name": "openai", "model_name": "gpt-4o", "model_id": None}]


def test_an_old_supabase_py_payload_works_after_the_expand_and_is_refused_only_after_the_contract(
        db_url, run_kit, clean_env):
    payloads = old_payloads(db_url)
    with serve(postgrest_route(db_url, KEY)) as api:
        client = create_client(api.url, KEY)
        expand = run_kit("push", "--expand", "--via", "direct", "--no-lint", "--db-url", db_url, "--json")
        assert (expand.code, expand.json["applied"]) == (0, ["20240101000000", "20261124120001"]), expand.err
        rows = [client.table("llm_usage").insert(p).execute().data[0] for p in payloads]
        assert [(r["provider_name"], r["model_name"], r["model_id"] is None) for r in rows] == [
            ("openai", "gpt-4o", False), ("openai", "gpt-4o", True)]
        rest_env(clean_env, api.url)
        smoke = run_kit("smoke", "--json")  # the kit's own REST smoke, its legacy payload accepted
        assert smoke.code == 0 and all(c["ok"] for c in smoke.json["checks"]), smoke.out
        assert "accepted (the model_id column still exists)" in [c["detail"] for c in smoke.json["checks"]]

        contract = run_kit("push", "--via", "direct", "--no-lint", "--db-url", db_url, "--json")
        assert (contract.code, contract.json["applied"]) == (0, ["20261124120002"]), contract.err
        for payload in payloads:
            with pytest.raises(APIError) as refused:
                client.table("llm_usage").insert(payload).execute()
            assert refused.value.code == "PGRST204"
            assert refused.value.message.startswith("Could not find the '")
    assert query(db_url, "select count(*) from llm_usage where agent_name = 'old-py'") == [(2,)]
