"""The `api` route: each file and its history row in one Management API query request.

`POST /v1/projects/{ref}/database/query` runs its text as one simple query, which PostgreSQL
runs as one implicit transaction: the file and its history insert commit together or not at
all. Each request takes the push lock for its own transaction and checks, under that lock,
that no other push has applied the file meanwhile.
"""

import re

from psycopg import sql

from kit.cloud.management import ManagementAPI
from kit.errors import APIAnswered, KitError, Refused
from kit.migrations import history, plan
from kit.migrations.workdir import Migration
from kit.settings import Settings

HISTORY_EXISTS = "select to_regclass('supabase_migrations.schema_migrations') is not null as present"
HISTORY_QUERY = "select coalesce(json_agg(version), '[]'::json) as versions from supabase_migrations.schema_migrations"


def run(settings: Settings, *, dry_run: bool, lint_files: bool, lock_wait_s: float) -> plan.PushResult:
    api = ManagementAPI.from_settings(settings)
    result = plan.prepare(settings, "api", applied_versions(api), dry_run, lint_files)
    if dry_run:
        return result
    for migration in plan.make_plan(settings, applied_versions(api)).pending:
        query(api, request_sql(migration, lock_wait_s), migration)
        result.applied.append(migration.version)
    return result


def applied_versions(api: ManagementAPI) -> list[str]:
    path = f"/v1/projects/{api.project_ref}/database/query"
    if not api.post(path, {"query": HISTORY_EXISTS})[0]["present"]:
        return []
    return sorted(api.post(path, {"query": HISTORY_QUERY})[0]["versions"], key=int)


def query(api: ManagementAPI, sql: str, migration: Migration):
    try:
        return api.post(f"/v1/projects/{api.project_ref}/database/query", {"query": sql})
    except APIAnswered as exc:
        raise _explain(exc, migration) from None


GUARD = """do $kit_push$
declare
  deadline timestamptz := clock_timestamp() + make_interval(secs => {wait});
  applied boolean;
begin
  while not pg_try_advisory_xact_lock({lock}) loop
    if clock_timestamp() > deadline then
      raise exception 'kit push: another push is running against this database' using errcode = 'KB004';
    end if;
    perform pg_sleep(0.2);
  end loop;
  if to_regclass('supabase_migrations.schema_migrations') is not null then
    execute 'select exists (select 1 from supabase_migrations.schema_migrations where version = $1)'
      into applied using {version}::text;
    if applied then
      raise exception 'kit push: version % was applied by another push meanwhile', {version}
        using errcode = 'KB004';
    end if;
  end if;
end
$kit_push$"""


def request_sql(migration: Migration, lock_wait_s: float) -> str:
    """Lock, re-check, the file, then its history row: one request, one transaction."""
    statements = history.split_statements(migration.sql)
    guard = sql.SQL(GUARD).format(wait=sql.Literal(float(lock_wait_s)), lock=sql.Literal(plan.PUSH_LOCK_KEY),
                                  version=sql.Literal(migration.version))
    record = sql.SQL("insert into supabase_migrations.schema_migrations (version, name, statements) values "
                     "({}, {}, {}::text[])").format(sql.Literal(migration.version), sql.Literal(migration.name),
                                                    sql.Literal(list(statements)))
    parts = [guard.as_string(None), migration.sql.rstrip().rstrip(";"), *history.SCHEMA_SQL, record.as_string(None)]
    return ";\n".join(parts) + ";\n"


def _explain(exc: APIAnswered, migration: Migration) -> KitError:
    """The database's error for the file, by its SQLSTATE; an answer that carries none is left as it is."""
    sqlstate, reason = failed_query_message(exc.detail)
    if sqlstate is None:
        return exc
    if sqlstate in plan.REFUSALS:
        return Refused(f"{reason.rstrip('.')}; {migration.path.name} rolled back, nothing of it was applied")
    return plan.file_failed(migration.path.name, reason, sqlstate)


def failed_query_message(text: str) -> tuple[str | None, str]:
    """(SQLSTATE, the database's message) from the Management API's answer to a failed query.

    The API gives the SQLSTATE only inside its message text, as `Failed to run sql query: ERROR:  KB001:
    llm name keys: ...` with the statement's LINE after it; (None, text) when the text is not of that form.
    """
    found = re.search(r"\bERROR:\s+([0-9A-Z]{5}): ([^\n]*)", text)
    return (found.group(1), found.group(2).strip()) if found else (None, text)
