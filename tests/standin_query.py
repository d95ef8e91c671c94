"""A stand-in for the Management API's `POST /v1/projects/{ref}/database/query`, on a real database.

The real endpoint cannot be reached from here. This one answers as it does: the bearer token is
checked, the body's `query` runs as one simple query (one implicit transaction) on the test
database, the last statement's rows come back as JSON objects with 201, and a PostgreSQL error
comes back as 400 `{"message": "Failed to run sql query: ERROR: ..."}`.
"""

import re

import psycopg
from psycopg.rows import dict_row

from tests.standin import Reply, Request

QUERY_PATH = re.compile(r"^/v1/projects/(?P<ref>[^/]+)/database/query$")


def query_route(db_url: str, ref: str, token: str):
    def route(request: Request) -> Reply:
        match = QUERY_PATH.match(request.path)
        if request.method != "POST" or not match:
            return Reply(404, {"message": "Cannot " + request.method + " " + request.path})
        if request.headers.get("authorization") != f"Bearer {token}":
            return Reply(401, {"message": "Unauthorized"})
        if match["ref"] != ref:
            return Reply(404, {"message": "Project not found"})
        return run_query(db_url, request.json["query"])

    return route


def run_query(db_url: str, sql: str) -> Reply:
    try:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
            cur = conn.execute(sql.encode(), prepare=False)
            rows = []
            while True:
                rows = cur.fetchall() if cur.description else []
                if not cur.nextset():
                    break
            return Reply(201, rows)
    except psycopg.Error as exc:
        primary = exc.diag.message_primary or str(exc)
        return Reply(400, {"message": f"Failed to run sql query: ERROR:  {exc.diag.sqlstate}: {primary}"})
