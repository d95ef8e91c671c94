"""The smoke test's `sql` route: each request run the way PostgREST runs it, as the service role."""

import asyncio
import json
import time

import psycopg
import psycopg.sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from kit import db
from kit.smoke import CheckError
from kit.settings import Settings

CLAIMS = json.dumps({"role": "service_role"})
SHAPE = ("provider_name", "model_name", "agent_name", "prompt_tokens", "completion_tokens", "cost_usd", "metadata")


class SqlDriver:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.conn = db.connect(settings, autocommit=True)
        self.conn.row_factory = dict_row

    def _request(self, sql: str, params=(), conn=None):
        """One transaction as the service role, the JWT claims set, as PostgREST does per request."""
        conn = conn or self.conn
        try:
            with conn.transaction():
                conn.execute("select set_config('role', 'service_role', true), "
                             "set_config('request.jwt.claims', %s, true)", (CLAIMS,))
                cur = conn.execute(sql, params)
                return cur.fetchall() if cur.description else []
        except psycopg.OperationalError as exc:
            raise CheckError(f"the database connection failed: {_first(exc)}") from None
        except psycopg.Error as exc:
            raise CheckError(f"{exc.diag.sqlstate}: {_first(exc)}") from None

    def models(self) -> list[tuple[str, str]]:
        models = self._request("select * from public.llm_models order by name")
        providers = {p.get("id"): p["name"] for p in self._request("select * from public.llm_providers")}
        return [(m["name"], m.get("provider_name") or providers.get(m.get("provider_id"), "")) for m in models]

    def insert(self, row: dict) -> dict:
        return self._request(*_insert_sql(row))[0]

    def select(self, run_id: str) -> list[dict]:
        return self._request("select * from public.llm_usage where metadata->>'smoke_run' = %s", (run_id,))

    def delete(self, run_id: str) -> None:
        self._request("delete from public.llm_usage where metadata->>'smoke_run' = %s", (run_id,))

    def legacy_insert(self, row: dict) -> str | None:
        try:
            self._request(*_insert_sql(row))
        except CheckError as exc:
            if str(exc).startswith("42703"):
                return f"42703 (undefined column): {str(exc).split(': ', 1)[1]}"
            raise
        return None

    async def insert_many(self, rows: list[dict]) -> list[float]:
        conns = []
        try:
            for _ in range(min(len(rows), 5)):
                conns.append(await psycopg.AsyncConnection.connect(
                    self.settings.db_url, autocommit=True, connect_timeout=self.settings.connect_timeout))
            queue = list(rows)
            latencies: list[float] = []
            outcomes = await asyncio.gather(*(self._worker(c, queue, latencies) for c in conns),
                                            return_exceptions=True)  # let every worker finish before closing
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            return latencies
        except psycopg.OperationalError as exc:
            raise CheckError(f"the database connection failed: {_first(exc)}") from None
        finally:
            for conn in conns:
                await conn.close()

    async def _worker(self, conn, queue: list[dict], latencies: list[float]) -> None:
        while queue:
            sql, params = _insert_sql(queue.pop())
            start = time.perf_counter()
            try:
                async with conn.transaction():
                    await conn.execute("select set_config('role', 'service_role', true), "
                                       "set_config('request.jwt.claims', %s, true)", (CLAIMS,))
                    await conn.execute(sql, params)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                raise CheckError(f"{exc.diag.sqlstate}: {_first(exc)}") from None
            latencies.append(time.perf_counter() - start)

    def close(self) -> None:
        self.conn.close()


def _insert_sql(row: dict):
    columns = list(row)
    values = [Jsonb(v) if isinstance(v, dict) else v for v in row.values()]
    sql = psycopg.sql.SQL("insert into public.llm_usage ({}) values ({}) returning *").format(
        psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(c) for c in columns),
        psycopg.sql.SQL(", ").join(psycopg.sql.Placeholder() for _ in columns))
    return sql, values


def _first(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    text = (diag.message_primary if diag and diag.message_primary else str(exc)) or exc.__class__.__name__
    return text.strip().splitlines()[0]
