"""Provider and model names that break naive SQL survive migrate -> rollback -> migrate, every row intact.

Hypothesis draws the names: quotes, backslashes, unicode, spaces, 255 characters, text that looks
like SQL or like a format placeholder. Each example gets a fresh database on the real PostgreSQL.
"""

import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings as hsettings, strategies as st

from kit import push, settings as settings_mod
from kit.backup import take as backup
from kit.rollback import in_place as rollback
from tests.helpers import ROOT, query

pytestmark = pytest.mark.majors  # scripts/test.sh runs these on every major

HOSTILE = ["'; drop table llm_usage; --", "o'brien", 'say "hi"', "back\\slash\\", "名前 モデル ✓", "  spaced  ",
           "x" * 255, "é" * 255, "%s %(name)s {0}", "$$ $tag$", "null", "NULL", "E'\\x41'", "a\tb\nc",
           "model_name = 'gpt'", "🙂 emoji", "--", "/* c */"]
NAME = st.one_of(st.sampled_from(HOSTILE),
                 st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                         min_size=1, max_size=255))


def _load(url: str, providers: list[str], models: list[str]) -> None:
    """Providers with one model each; two usage rows per model: one with UUID links, one with names only."""
    with psycopg.connect(url, autocommit=True) as conn:
        for provider, model in zip(providers, models, strict=True):
            pid = conn.execute("insert into llm_providers (name) values (%s) returning id", (provider,)).fetchone()[0]
            mid = conn.execute("insert into llm_models (provider_id, name) values (%s, %s) returning id",
                               (pid, model)).fetchone()[0]
            conn.execute("insert into llm_usage (provider_id, model_id, provider_name, model_name, agent_name) "
                         "values (%s, %s, %s, %s, 'hostile'), (null, null, %s, %s, 'hostile')",
                         (pid, mid, provider, model, provider, model))


USAGE = ("select id, provider_name, model_name, provider_id, model_id from llm_usage where agent_name = 'hostile' "
         "order by id")
NAMES_ONLY = "select id, provider_name, model_name from llm_usage where agent_name = 'hostile' order by id"
LOOKUP_IDS = ("select 'p', name, id from llm_providers where name = any(%s) union all "
              "select 'm', name, id from llm_models where name = any(%s) order by 1, 2")
# A link that is there names the row's own provider and model (NULL links stay as recorded).
LINKED_WRONG = """select count(*) from llm_usage u
    left join llm_models m on m.id = u.model_id left join llm_providers p on p.id = u.provider_id
    where (u.model_id is not null and m.name is distinct from u.model_name)
       or (u.provider_id is not null and p.name is distinct from u.provider_name)"""


@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAME, min_size=1, max_size=4, unique=True), data=st.data())
def test_hostile_names_survive_migrate_rollback_migrate(names, data, make_db, tmp_path):
    models = data.draw(st.lists(NAME, min_size=len(names), max_size=len(names), unique=True), label="models")
    url = make_db()  # one per example; all are dropped when the test ends
    existing = {r[0] for r in query(url, "select name from llm_providers union select name from llm_models")}
    providers = [n for n in names if n not in existing]
    models = [m for m in models if m not in existing and m not in providers][:len(providers)]
    providers = providers[:len(models)]
    assume(providers)
    _load(url, providers, models)
    before = query(url, USAGE)
    ids = query(url, LOOKUP_IDS, (providers, models))
    s = settings_mod.load({"db_url": url, "backup_dir": str(tmp_path / uuid.uuid4().hex)}, environ={}, cwd=ROOT)
    taken = backup.take(s)
    push.run(s, "direct", lint_files=False)
    assert query(url, NAMES_ONLY) == [r[:3] for r in before]
    assert sorted(query(url, "select name, provider_name from llm_models where name = any(%s)", (models,))) == \
        sorted(zip(models, providers, strict=True))
    rollback.in_place(s, taken.path)
    after = query(url, USAGE)
    assert [r[:3] for r in after] == [r[:3] for r in before]
    assert after == before  # every link exactly as recorded, NULL ones included
    assert query(url, LOOKUP_IDS, (providers, models)) == ids
    assert query(url, LINKED_WRONG) == [(0,)]
    assert push.run(s, "direct", lint_files=False).applied == ["20261124120000"]
    assert query(url, NAMES_ONLY) == [r[:3] for r in before]
