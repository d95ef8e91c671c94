"""The smoke test's `sql` route: each request run the way PostgREST runs it, as the service role."""

import asyncio
import json
import time

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Jsonb

from kit import db
from kit.errors import CheckError
from kit.schema import catalog
from kit.settings import Settings
from kit.smoke.driver import KeyColumns
from kit.smoke.rows import AGENT, Col, Shape

CLAIMS = json.dumps({"role": "service_role"})
USAGE = sql.Identifier("public", "llm_usage")
PARAMETERS = 65535  # the most a statement can take


class SqlDriver(KeyColumns):
    def __init__(self, settings: Settings):
        self.settings = settings
        self.conn = db.connect(settings, autocommit=True)
        self.conn.row_factory = dict_row

    def _request(self, query, params=(), conn=None):
        """One transaction as the service role, the JWT claims set, as PostgREST does per request."""
        conn = conn or self.conn
        try:
            with conn.transaction():
                conn.execute("select set_config('role', 'service_role', true), "
                             "set_config('request.jwt.claims', %s, true)", (CLAIMS,))
                cur = conn.execute(query, params)
                return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise _as_check(exc) from None

    def where(self) -> str:
        """The cluster's system identifier (set once by initdb; host and port where it is not readable) and
        the database's oid and name: a database dropped and created again under its name is another one."""
        try:
            with self.conn.transaction():
                cluster = self.conn.execute("select system_identifier::text as id from pg_control_system()"
                                            ).fetchone()["id"]
        except psycopg.Error:
            cluster = f"{self.conn.info.host}:{self.conn.info.port}"
        here = self.conn.execute("select oid::text as oid, datname from pg_database where datname = current_database()"
                                 ).fetchone()
        return f"postgres:{cluster}/{here['oid']}/{here['datname']}"

    def models(self) -> list[tuple[str, str]]:
        models = self._request("select * from public.llm_models order by name")
        providers = {p.get("id"): p["name"] for p in self._request("select * from public.llm_providers")}
        return [(m["name"], m.get("provider_name") or providers.get(m.get("provider_id"), "")) for m in models]

    def shape(self) -> Shape:
        self.conn.row_factory = tuple_row
        try:
            cat = catalog.read(self.conn)
        except psycopg.Error as exc:
            raise _as_check(exc) from None
        finally:
            self.conn.row_factory = dict_row
        if "llm_usage" not in cat.tables:
            raise CheckError("public.llm_usage does not exist: push the migrations first")
        return shape_of(cat.tables["llm_usage"])

    def insert(self, row: dict) -> dict:
        return self._request(*_insert_sql(row))[0]

    def select_keys(self, keys: list[tuple]) -> list[dict]:
        return self._request(*_by_keys("select * from {} where ", self._key(), keys)) if keys else []

    def delete_keys(self, keys: list[tuple]) -> None:
        key = self._key()
        step = max(1, PARAMETERS // len(key))  # a statement takes at most 65,535 parameters
        for start in range(0, len(keys), step):
            self._request(*_by_keys("delete from {} where ", key, keys[start:start + step]))

    def select_marker(self, column: str, kind: str, run_id: str) -> list[dict]:
        return self._request(*_by_marker("select * from {} where ", column, kind, run_id))

    def delete_marker(self, column: str, kind: str, run_id: str) -> None:
        self._request(*_by_marker("delete from {} where ", column, kind, run_id))

    def differences(self, sent: dict, got: dict, key: tuple | None, marker: list | None, types: dict) -> list[str]:
        """The columns of `sent` whose stored value differs, judged by PostgreSQL on the typed values: each
        sent value, cast to its column's type as the insert cast it, `is not distinct from` the stored one."""
        names = list(sent)
        tests = [sql.SQL("{}::jsonb is not distinct from %s::jsonb as {}" if types.get(n) == "json" else
                         "{} is not distinct from %s as {}").format(sql.Identifier(n), sql.Identifier(f"c{i}"))
                 for i, n in enumerate(names)]
        where, located = self._locate(sent, key, marker)
        rows = self._request(sql.SQL("select {} from {} where ").format(sql.SQL(", ").join(tests), USAGE) + where,
                             [_value(sent[n]) for n in names] + located)
        if not rows:
            raise CheckError(f"the row for {sent.get('model_name')} was not read back")
        return [n for i, n in enumerate(names) if not rows[0][f"c{i}"]]

    def _locate(self, sent: dict, key: tuple | None, marker: list | None):
        if key is not None:
            return sql.SQL("({}) = ({})").format(sql.SQL(", ").join(map(sql.Identifier, self._key())),
                                                 sql.SQL(", ").join(sql.Placeholder() * len(key))), list(key)
        column, kind, run_id = marker
        if kind == "json":
            return sql.SQL("{0} ->> 'smoke_run' = %s and {0} ->> 'n' = %s").format(sql.Identifier(column)), \
                [run_id, str(sent[column]["n"])]
        return sql.SQL("{} = %s").format(sql.Identifier(column)), [sent[column]]

    def legacy_insert(self, row: dict) -> tuple[str | None, dict | None]:
        """(the refusal when it is about model_id, else None; the row written when it was accepted)."""
        try:
            return None, self._request(*_insert_sql(row))[0]
        except CheckError as exc:
            if exc.code == "42703" and self.refused_only_model_id(row):
                return f"42703 (undefined column): {str(exc).removeprefix('42703: ')}", None
            raise

    async def insert_many(self, rows: list[dict]) -> tuple[list[float], list[dict]]:
        conns = []
        try:
            for _ in range(min(len(rows), 5)):
                conns.append(await psycopg.AsyncConnection.connect(
                    self.settings.db_url, autocommit=True, connect_timeout=self.settings.connect_timeout))
            queue = list(rows)
            latencies: list[float] = []
            returned: list[dict] = []
            outcomes = await asyncio.gather(*(self._worker(c, queue, latencies, returned) for c in conns),
                                            return_exceptions=True)  # let every worker finish before closing
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            return latencies, returned
        except psycopg.OperationalError as exc:
            raise _as_check(exc) from None
        finally:
            for conn in conns:
                await conn.close()

    async def _worker(self, conn, queue: list[dict], latencies: list[float], returned: list[dict]) -> None:
        while queue:
            query, params = _insert_sql(queue.pop())
            start = time.perf_counter()
            try:
                async with conn.transaction():
                    await conn.execute("select set_config('role', 'service_role', true), "
                                       "set_config('request.jwt.claims', %s, true)", (CLAIMS,))
                    cur = await conn.execute(query, params)
                    names = [d.name for d in cur.description]
                    returned += [dict(zip(names, r)) for r in await cur.fetchall()]
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                raise _as_check(exc) from None
            latencies.append(time.perf_counter() - start)

    def close(self) -> None:
        self.conn.close()


def _as_check(exc: psycopg.Error) -> CheckError:
    """A failed request as the smoke test reports it: the lost connection, or the SQLSTATE and the message."""
    if isinstance(exc, psycopg.OperationalError):
        return CheckError(f"the database connection failed: {db.error_line(exc)}")
    return CheckError(f"{exc.diag.sqlstate}: {db.error_line(exc)}", exc.diag.sqlstate)


def shape_of(table: catalog.Table, without: tuple[str, ...] = ()) -> Shape:
    """The smoke rows' view of llm_usage from the catalog, leaving out the columns named in `without`."""
    return Shape({c.name: Col(c.name, c.type if c.type.startswith(c.base) else c.base, c.not_null,
                              c.default is not None or c.identity != "", c.writable, c.enum_labels)
                  for c in table.columns.values() if c.name not in without},
                 [k for k in table.primary_key if k not in without])


def _value(value):
    return Jsonb(value) if isinstance(value, dict) else value


def _insert_sql(row: dict):
    columns = list(row)
    values = [_value(v) for v in row.values()]
    query = sql.SQL("insert into {} ({}) values ({}) returning *").format(
        USAGE, sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        sql.SQL(", ").join(sql.Placeholder() for _ in columns))
    return query, values


def _by_keys(head: str, key: list[str], keys: list[tuple]):
    one = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(key)))
    query = sql.SQL(head).format(USAGE) + sql.SQL("({}) in ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, key)), sql.SQL(", ").join(one for _ in keys))
    return query, [v for k in keys for v in k]


def _by_marker(head: str, column: str, kind: str, run_id: str):
    if kind == "json":
        return sql.SQL(head).format(USAGE) + sql.SQL("{} ->> 'smoke_run' = %s").format(sql.Identifier(column)), \
            (run_id,)
    return sql.SQL(head).format(USAGE) + sql.SQL("{} like %s").format(sql.Identifier(column)), \
        (f"{AGENT}-{run_id}-%",)
