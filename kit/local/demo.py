"""The local default's demo rows: kit/sql/local_data.sql on the kit's baseline, fitted to a team's own tables.

A team repo's migrations (`kit deploy --workdir TEAM` with nothing configured) may create the LLM
tables without some of the baseline's columns (`base_url`, costs, `metadata`) or with more. Then the
demo rows go only into the columns that exist; a table whose other columns need a value the kit
cannot know (NOT NULL without default, an enum) gets no demo rows, and that is said in one note.
"""

import psycopg
from psycopg import sql

PROVIDERS = [("openai", "OpenAI", "https://api.openai.com/v1"), ("anthropic", "Anthropic", "https://api.anthropic.com"),
             ("google", "Google", "https://generativelanguage.googleapis.com"), ("mistral", "Mistral AI",
             "https://api.mistral.ai"), ("groq", "Groq", "https://api.groq.com/openai/v1")]
MODELS = [("openai", "gpt-4o", 128000, 2.5, 10.0), ("openai", "gpt-4o-mini", 128000, 0.15, 0.6),
          ("anthropic", "claude-sonnet-4", 200000, 3.0, 15.0), ("google", "gemini-2.0-flash", 1000000, 0.1, 0.4),
          ("mistral", "mistral-large", 128000, 2.0, 6.0)]
PROVIDER_COLUMNS = ("name", "display_name", "base_url")
MODEL_COLUMNS = ("provider_id", "provider_name", "name", "context_window", "input_cost_per_mtok",
                 "output_cost_per_mtok")
# llm_usage column -> the value of demo row g (m: its model, p: its provider)
USAGE_VALUES = {
    "provider_id": "case when g % 3 = 0 then p.id end", "model_id": "case when g % 3 = 0 then m.id end",
    "provider_name": "p.name", "model_name": "m.name",
    "agent_name": "(array['planner', 'coder', 'reviewer', 'support-bot'])[1 + g % 4]",
    "prompt_tokens": "100 + (g * 37) % 4000", "completion_tokens": "20 + (g * 13) % 1500",
    "created_at": "now() - make_interval(mins => g)",
}

COLUMNS_SQL = """
select a.attname, a.attnotnull and not a.atthasdef and a.attidentity = '' and a.attgenerated = ''
from pg_attribute a where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
  and a.attgenerated = ''
"""


def seed(conn: psycopg.Connection, data_sql: bytes) -> str | None:
    """Load the demo rows; None when all went in, else one note saying what was left out and why."""
    try:
        with conn.transaction():
            conn.execute(data_sql)
        return None
    except psycopg.Error:
        pass
    for table, insert in (("llm_providers", _providers), ("llm_models", _models), ("llm_usage", _usage)):
        columns = _columns(conn, table)
        try:
            with conn.transaction():
                insert(conn, columns)
        except (psycopg.Error, _Unfillable) as exc:
            reason = str(exc) if isinstance(exc, _Unfillable) else (exc.diag.message_primary or str(exc))
            return (f"the local default has no demo rows in {table} and after: its columns differ from the kit's "
                    f"baseline ({reason.splitlines()[0]}); add your own rows, e.g. in supabase/seed.sql")
    return None


class _Unfillable(Exception):
    pass


def _columns(conn: psycopg.Connection, table: str) -> dict[str, bool]:
    """column -> needs a value (NOT NULL, no default, not identity or generated)."""
    return dict(conn.execute(COLUMNS_SQL, (f"public.{table}",)).fetchall())


def _usable(table: str, columns: dict[str, bool], offered) -> list[str]:
    needed = sorted(c for c, required in columns.items() if required and c not in offered)
    if needed:
        raise _Unfillable(f"{table}.{', '.join(needed)} need(s) a value the demo data does not have")
    return [c for c in offered if c in columns]


def _providers(conn: psycopg.Connection, columns: dict[str, bool]) -> None:
    use = _usable("llm_providers", columns, PROVIDER_COLUMNS)
    rows = [tuple(v for c, v in zip(PROVIDER_COLUMNS, row, strict=True) if c in use) for row in PROVIDERS]
    conn.cursor().executemany(sql.SQL("insert into public.llm_providers ({}) select {} where not exists "
                                      "(select 1 from public.llm_providers x where x.name = %s)").format(
        _ids(use), sql.SQL(", ").join(sql.Placeholder() * len(use))), [(*r, r[0]) for r in rows])


def _models(conn: psycopg.Connection, columns: dict[str, bool]) -> None:
    use = _usable("llm_models", columns, MODEL_COLUMNS)
    values = {"provider_id": "p.id", "provider_name": "p.name", "name": "%(name)s::text",
              "context_window": "%(ctx)s::integer", "input_cost_per_mtok": "%(cin)s::numeric",
              "output_cost_per_mtok": "%(cout)s::numeric"}
    if "provider_id" in use and "id" not in _columns(conn, "llm_providers"):
        raise _Unfillable("llm_models.provider_id but llm_providers has no id")
    statement = sql.SQL("insert into public.llm_models ({}) select {} from public.llm_providers p "
                        "where p.name = %(provider)s::text and not exists (select 1 from public.llm_models x "
                        "where x.name = %(name)s::text)").format(_ids(use), sql.SQL(", ").join(
                            sql.SQL(values[c]) for c in use))
    names = ("provider", "name", "ctx", "cin", "cout")
    conn.cursor().executemany(statement, [dict(zip(names, m, strict=True)) for m in MODELS])


def _usage(conn: psycopg.Connection, columns: dict[str, bool]) -> None:
    use = _usable("llm_usage", columns, USAGE_VALUES)
    models = _columns(conn, "llm_models")
    if ("model_id" in use and "id" not in models) or ("provider_id" in use and "id" not in _columns(
            conn, "llm_providers")):
        raise _Unfillable("llm_usage's UUID links but the lookup tables have no id")
    join = "p.id = m.provider_id" if "provider_id" in models else "p.name = m.provider_name"
    conn.execute(sql.SQL("insert into public.llm_usage ({}) select {} from generate_series(1, 5000) as g "
                         "join lateral (select * from public.llm_models order by name offset (g % {}) limit 1) m "
                         "on true join public.llm_providers p on " + join).format(
        _ids(use), sql.SQL(", ").join(sql.SQL(USAGE_VALUES[c]) for c in use), sql.Literal(len(MODELS))))


def _ids(columns) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in columns)
