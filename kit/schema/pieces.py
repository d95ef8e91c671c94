"""The name-key migration's named steps: the pg_temp functions its file defines, found and loaded on their own.

The file defines each step as `create or replace function pg_temp.llm_...` and ends with a driver that
calls them. `kit status` loads only the definitions and calls CHECK; the tests call each step alone.
An older copy of the file (one DO block) defines none.
"""

import re

import psycopg

from kit.statements import split_statements

PREFIX = "llm_"
CHECK = "llm_check"  # the state, then KB001 naming every blocker, or the suggestions as notices
CHECK_SQL = "select pg_temp.llm_check()"
_DEFINITION = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*create\s+or\s+replace\s+function\s+"
                         r"pg_temp\s*\.\s*(" + PREFIX + r"\w+)\s*\(", re.S | re.I)


def definitions(text: str) -> dict[str, str]:
    """Each step's name and its CREATE FUNCTION statement, in the file's order; empty for an older copy."""
    found = {}
    for statement in split_statements(text):
        match = _DEFINITION.match(statement)
        if match:
            found[match[1].lower()] = statement
    return found


def load(conn: psycopg.Connection, text: str) -> list[str]:
    """Define the file's steps in `conn`'s session (in pg_temp, so they go with its transaction or session)."""
    steps = definitions(text)
    for statement in steps.values():
        conn.execute(statement.encode(), prepare=False)
    return list(steps)
