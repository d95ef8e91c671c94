"""The smoke test's `sql` route: each request run the way PostgREST runs it, as the service role."""

import asyncio
import json
import time

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Jsonb

from kit import db
from kit.errors import CheckError, ConnectError
from kit.schema import catalog
from kit.settings import Settings
from kit.smoke.driver import KeyColumns
from kit.smoke.rows import AGENT, Col, Shape

CLAIMS = json.dumps({"role": "service_role"})
CLAIMS_SQL = ("select set_config('role', 'service_role', true), set_config('request.jwt.claims', %s, true)",
              (CLAIMS,))

USAGE = sql.Identifier("public", "llm_usage")
PARAMETERS = 65535  # the most a statement can take


class SqlDriver(KeyColumns):
    """Each request is a transaction of its own, as PostgREST runs one; the requests the runner asks for together
    go in one flight (kit.db.batch), so a smoke run costs a handful of round trips however far the server is."""

    def __init__(self, settings: Settings, conn: psycopg.Connection | None = None):
        """On `conn` (autocommit; a deploy's, which stays open) or on a connection of its own."""
        self.settings = settings
        self._own = conn is None
        self.conn = conn or db.connect(settings, autocommit=True)
        self._first: dict | None = None

    def _requests(self, requests: list[list[tuple]]) -> list:
        """Each request (a list of (query, params)) in a transaction of its own as the service role, the JWT
        claims set; all in one flight. Returns, per request, the rows of each of its queries, or the CheckError
        it failed with; a failed request does not stop the ones after it (they are sent again)."""
        outcomes: list = []
        pending = list(requests)
        while pending:
            statements, ends = [], []
            for request in pending:
                statements += [("begin", None), CLAIMS_SQL, *request, ("commit", None)]
                ends.append(len(statements))
            try:
                results = db.batch(self.conn, statements, row_factory=dict_row)
            except db.BatchFailed as failed:
                done = next(i for i, end in enumerate(ends) if failed.index < end)
                outcomes += [_rows(failed.results, ends, i) for i in range(done)]
                outcomes.append(_as_check(failed.error))
                pending = pending[done + 1:]
                continue
            except psycopg.Error as exc:
                raise _as_check(exc) from None
            outcomes += [_rows(results, ends, i) for i in range(len(pending))]
            pending = []
        return outcomes

    def _request(self, query, params=()) -> list[dict]:
        """One request of one query: its rows; a failure raises its CheckError."""
        outcome = self._requests([[(query, params)]])[0]
        if isinstance(outcome, CheckError):
            raise outcome
        return outcome[0]

    def _survey(self) -> dict:
        """The database's identity, llm_usage's shape and the registered models, read together on first use."""
        if self._first is None:
            reads = [(*db.IDENTITY_SQL, tuple_row), *[(q, p, tuple_row) for q, p in catalog.statements()],
                     ("begin", None), CLAIMS_SQL, ("select * from public.llm_models order by name", None),
                     ("select * from public.llm_providers", None), ("commit", None)]
            first: dict = {}
            try:
                results = db.batch(self.conn, reads, row_factory=dict_row)
            except db.BatchFailed as failed:  # only the models' request can fail: as the service role, under RLS
                results = failed.results
                first["models"] = _as_check(failed.error)
            except psycopg.Error as exc:
                raise _as_check(exc) from None
            first["where"], first["catalog"] = results[0][0], catalog.from_rows(results[1:1 + catalog.READS])
            models = 1 + catalog.READS + 2  # after the catalog's reads, the begin and the claims
            first.setdefault("models", (results[models], results[models + 1]))
            self._first = first
        return self._first

    def where(self) -> str:
        """The cluster's system identifier (set once by initdb; host and port where it is not readable) and
        the database's oid and name: a database dropped and created again under its name is another one."""
        cluster, oid, name = self._survey()["where"]
        return f"postgres:{cluster or f'{self.conn.info.host}:{self.conn.info.port}'}/{oid}/{name}"

    def models(self) -> list[tuple[str, str]]:
        found = self._survey()["models"]
        if isinstance(found, CheckError):
            raise found
        models, provider_rows = found
        providers = {p.get("id"): p["name"] for p in provider_rows}
        return [(m["name"], m.get("provider_name") or providers.get(m.get("provider_id"), "")) for m in models]

    def shape(self) -> Shape:
        cat = self._survey()["catalog"]
        if "llm_usage" not in cat.tables:
            raise CheckError("public.llm_usage does not exist: push the migrations first")
        return shape_of(cat.tables["llm_usage"])

    def insert(self, row: dict) -> dict:
        return self._request(*_insert_sql(row))[0]

    def insert_each(self, rows: list[dict]) -> list:
        """Each row in a request of its own, all in one flight: the row written, or the CheckError, per row."""
        outcomes = self._requests([[_insert_sql(row)] for row in rows])
        return [o if isinstance(o, CheckError) else o[0][0] for o in outcomes]

    def select_keys(self, keys: list[tuple]) -> list[dict]:
        return self._request(*_by_keys("select * from {} where ", self._key(), keys)) if keys else []

    def delete_keys(self, keys: list[tuple]) -> None:
        for outcome in self._requests(self._deletes(keys)):
            if isinstance(outcome, CheckError):
                raise outcome

    def _deletes(self, keys: list[tuple]) -> list[list[tuple]]:
        key = self._key()
        step = max(1, PARAMETERS // len(key))  # a statement takes at most 65,535 parameters
        return [[_by_keys("delete from {} where ", key, keys[start:start + step])]
                for start in range(0, len(keys), step)]

    def select_marker(self, column: str, kind: str, run_id: str) -> list[dict]:
        return self._request(*_by_marker("select * from {} where ", column, kind, run_id))

    def delete_marker(self, column: str, kind: str, run_id: str) -> None:
        self._request(*_by_marker("delete from {} where ", column, kind, run_id))

    def delete_and_count(self, keys: list[tuple], marker: list | None) -> int:
        """Delete the rows of `keys` and of `marker` (column, kind, run id), then count what is left of them:
        one flight."""
        requests = self._deletes(keys) if keys else []
        requests += [[_by_marker("delete from {} where ", *marker)]] if marker else []
        counts = ([_by_keys("select * from {} where ", self._key(), keys)] if keys else []) + \
                 ([_by_marker("select * from {} where ", *marker)] if marker else [])
        outcomes = self._requests(requests + [counts])
        failed = next((o for o in outcomes if isinstance(o, CheckError)), None)
        if failed:
            raise failed
        return sum(len(rows) for rows in outcomes[-1])

    def compare_each(self, items: list[tuple], types: dict) -> list:
        """For each (sent, key, marker): (the row read back or None, the columns of `sent` whose stored value
        differs), or the CheckError; one flight."""
        requests = []
        for sent, key, marker in items:
            where, located = self._locate(sent, key, marker)
            requests.append([(sql.SQL("select * from {} where ").format(USAGE) + where, located),
                             _differences_sql(sent, types, where, located)])
        outcomes: list[CheckError | tuple[dict | None, list[str]]] = []
        for (sent, _, _), outcome in zip(items, self._requests(requests), strict=True):
            if isinstance(outcome, CheckError):
                outcomes.append(outcome)
                continue
            rows, tests = outcome
            wrong = [n for i, n in enumerate(sent) if tests and not tests[0][f"c{i}"]]
            outcomes.append((rows[0] if rows else None, wrong))
        return outcomes

    def differences(self, sent: dict, got: dict, key: tuple | None, marker: list | None, types: dict) -> list[str]:
        """The columns of `sent` whose stored value differs, judged by PostgreSQL on the typed values: each
        sent value, cast to its column's type as the insert cast it, `is not distinct from` the stored one."""
        outcome = self.compare_each([(sent, key, marker)], types)[0]
        if isinstance(outcome, CheckError):
            raise outcome
        if outcome[0] is None:
            raise CheckError(f"the row for {sent.get('model_name')} was not read back")
        return outcome[1]

    def _locate(self, sent: dict, key: tuple | None, marker: list | None):
        if key is not None:
            return sql.SQL("({}) = ({})").format(sql.SQL(", ").join(map(sql.Identifier, self._key())),
                                                 sql.SQL(", ").join(sql.Placeholder() * len(key))), list(key)
        if marker is None:  # without a key the builder marks every row: not reached
            raise CheckError("a smoke row has neither a primary key nor a marker to find it by")
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
        """The rows at once over a few connections opened together: each sends its share of the requests in
        one flight, and the server runs the connections' transactions side by side."""
        conns: list = []
        try:
            opened = await asyncio.gather(*(db.connect_async(self.settings) for _ in range(min(len(rows), 5))),
                                          return_exceptions=True)
            conns = [c for c in opened if isinstance(c, psycopg.AsyncConnection)]
            failed = next((c for c in opened if isinstance(c, BaseException)), None)
            if isinstance(failed, ConnectError):
                raise CheckError(f"the database connection failed: {failed}")
            if failed:
                raise failed
            latencies: list[float] = []
            returned: list[dict] = []
            shares = [rows[i::len(conns)] for i in range(len(conns))]
            outcomes = await asyncio.gather(*(self._send(c, share, latencies, returned) for c, share in
                                              zip(conns, shares, strict=True)), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            return latencies, returned
        except psycopg.Error as exc:
            raise _as_check(exc) from None
        finally:
            for conn in conns:
                await conn.close()

    async def _send(self, conn, share: list[dict], latencies: list[float], returned: list[dict]) -> None:
        """Every request of `share` in one pipeline; each one's latency runs until its own rows are back."""
        start, error = time.perf_counter(), None
        try:
            async with conn.pipeline():
                try:  # an error is raised here, not out of the pipeline, which would log it again
                    cursors = []
                    for row in share:
                        for query, params in [("begin", None), CLAIMS_SQL, _insert_sql(row), ("commit", None)]:
                            cursors.append(conn.cursor(row_factory=dict_row))
                            await cursors[-1].execute(query, params)
                    for inserted in cursors[2::4]:
                        returned += await inserted.fetchall()
                        latencies.append(time.perf_counter() - start)
                except psycopg.Error as exc:
                    error = exc
        except psycopg.Error as exc:
            error = error or exc
        if error is not None:
            raise error

    def close(self) -> None:
        if self._own:
            self.conn.close()


def _rows(results: list, ends: list[int], i: int) -> list:
    """The rows of each query of request i, out of a batch in which each request was begin, the claims, its
    queries, commit."""
    start = ends[i - 1] if i else 0
    return results[start + 2:ends[i] - 1]


def _differences_sql(sent: dict, types: dict, where, located: list) -> tuple:
    tests = [sql.SQL("{}::jsonb is not distinct from %s::jsonb as {}" if types.get(n) == "json" else
                     "{} is not distinct from %s as {}").format(sql.Identifier(n), sql.Identifier(f"c{i}"))
             for i, n in enumerate(sent)]
    return (sql.SQL("select {} from {} where ").format(sql.SQL(", ").join(tests), USAGE) + where,
            [_value(v) for v in sent.values()] + located)


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
