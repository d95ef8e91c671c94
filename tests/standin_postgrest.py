"""A stand-in for PostgREST (the project's /rest/v1 API), backed by the real test database.

PostgREST cannot run here. This serves the subset supabase-py uses for the smoke test and
answers as PostgREST does: the `apikey` and `Authorization: Bearer` headers are checked (401
"Invalid API key" otherwise), each request runs in one transaction as the service role with the
JWT claims in request.jwt.claims, an unknown column in a body is 400 PGRST204, and a PostgreSQL
error comes back as `{"code", "message", "details", "hint"}` with PostgREST's status for it.
"""

import json
import re

import psycopg
import psycopg.sql as sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.standin import Reply, Request

PATH = re.compile(r"^/rest/v1(?:/(?P<table>[a-z_]*))?$")
FILTER = re.compile(r"^(?P<op>eq|neq|like)\.(?P<value>.*)$")
OPS = {"eq": "=", "neq": "<>", "like": "like"}
# The OpenAPI description PostgREST serves at /rest/v1/: format is the column's type, default is
# present when the column has one (identity and generated columns count), required lists the
# NOT NULL columns without, and a primary key column's description carries <pk/>.
OPENAPI_SQL = """
select c.relname, a.attname, format_type(a.atttypid, null), a.attnotnull,
       a.atthasdef or a.attidentity <> '' or a.attgenerated <> '',
       exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary and a.attnum = any (i.indkey)),
       array(select enumlabel::text from pg_enum where enumtypid = a.atttypid order by enumsortorder)
from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v') order by c.relname, a.attnum
"""
STATUS = {"23502": 400, "23503": 409, "23505": 409, "42501": 403, "42703": 400, "42P01": 404}


def postgrest_route(db_url: str, key: str):
    def route(request: Request) -> Reply:
        match = PATH.match(request.path)
        if not match:
            return Reply(404, {"message": "no Route matched with those values"})
        if request.headers.get("apikey") != key or request.headers.get("authorization") != f"Bearer {key}":
            return Reply(401, {"message": "Invalid API key",
                               "hint": "Double check your Supabase `anon` or `service_role` API key."})
        try:
            if not match["table"]:
                return Reply(200, _openapi(db_url))
            return _handle(db_url, match["table"], request)
        except psycopg.Error as exc:
            d = exc.diag
            return Reply(STATUS.get(d.sqlstate, 400), {"code": d.sqlstate, "message": d.message_primary,
                                                       "details": d.message_detail, "hint": d.message_hint})

    return route


def _handle(db_url: str, table: str, request: Request) -> Reply:
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn, conn.transaction():
        conn.execute("select set_config('role', 'service_role', true), "
                     "set_config('request.jwt.claims', %s, true)", (json.dumps({"role": "service_role"}),))
        columns = {r["column_name"] for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'public' and table_name = %s",
            (table,))}
        where, params = _filters(request.query)
        target = sql.Identifier("public", table)
        if request.method == "GET":
            order = dict(request.query).get("order")
            tail = sql.SQL(" order by {}").format(sql.Identifier(order.split(".")[0])) if order else sql.SQL("")
            rows = conn.execute(sql.SQL("select * from {}{}{}").format(target, where, tail), params).fetchall()
            return Reply(200, rows)
        if request.method == "DELETE":
            rows = conn.execute(sql.SQL("delete from {}{} returning *").format(target, where), params).fetchall()
            return Reply(200 if "return=representation" in request.headers.get("prefer", "") else 204,
                         rows if "return=representation" in request.headers.get("prefer", "") else None)
        if request.method == "POST":
            return _insert(conn, table, target, columns, request)
    return Reply(405, {"message": "method not allowed"})


def _insert(conn, table: str, target, columns: set[str], request: Request) -> Reply:
    body = request.json
    rows = body if isinstance(body, list) else [body]
    for row in rows:
        unknown = [c for c in row if c not in columns]
        if unknown:
            return Reply(400, {"code": "PGRST204", "details": None, "hint": None,
                               "message": f"Could not find the '{unknown[0]}' column of '{table}' in the schema cache"})
    out = []
    for row in rows:
        names = list(row)
        statement = sql.SQL("insert into {} ({}) values ({}) returning *").format(
            target, sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(sql.Placeholder() * len(names)))
        out += conn.execute(statement, [Jsonb(v) if isinstance(v, (dict, list)) else v for v in row.values()]).fetchall()
    return Reply(201, out if "return=representation" in request.headers.get("prefer", "") else None)


def _openapi(db_url: str) -> dict:
    definitions: dict = {}
    with psycopg.connect(db_url, autocommit=True) as conn:
        for table, column, typ, not_null, has_default, pk, labels in conn.execute(OPENAPI_SQL):
            d = definitions.setdefault(table, {"type": "object", "properties": {}, "required": []})
            prop = {"format": typ, "type": "string"}
            if has_default:
                prop["default"] = "(set by the database)"
            if pk:
                prop["description"] = "Note:\nThis is a Primary Key.<pk/>"
            if labels:
                prop["enum"] = list(labels)
            d["properties"][column] = prop
            if not_null and not has_default:
                d["required"].append(column)
    return {"swagger": "2.0", "definitions": definitions}


def _filters(query: list[tuple[str, str]]):
    parts, params = [], []
    for name, value in query:
        if name in ("select", "order", "columns", "limit"):
            continue
        match = FILTER.match(value)
        if not match:
            continue
        if len(name) > 1 and name[0] == name[-1] == '"':  # PostgREST's quoted column name
            name = name[1:-1].replace('\\"', '"')
        if "->>" in name:
            column, key = name.split("->>", 1)
            left = sql.SQL("{} ->> {}").format(sql.Identifier(column), sql.Literal(key))
        else:
            left = sql.Identifier(name)
        parts.append(sql.SQL("{} {} %s").format(left, sql.SQL(OPS[match["op"]])))
        params.append(match["value"].replace("*", "%") if match["op"] == "like" else match["value"])
    if not parts:
        return sql.SQL(""), params
    return sql.SQL(" where ") + sql.SQL(" and ").join(parts), params
