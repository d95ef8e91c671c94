"""Read the COPY blocks of a plain-format data stream as it passes: rows per table, and chosen columns of chosen tables.

Rows are counted with bytes.count over whole blocks (a row is one line: COPY text escapes newlines), so
counting costs next to nothing; only the tables asked for are split into fields.
"""

import re

END = b"\\.\n"


def identifiers(text: str) -> list[str]:
    """`"a"."b" ("c", d)` -> ['a', 'b', 'c', 'd']: quoted (with "" inside) or bare identifiers, in order."""
    return [q.replace('""', '"') if q else bare for q, bare in re.findall(r'"((?:[^"]|"")*)"|([A-Za-z_][\w$]*)', text)]


class CopyReader:
    """Feed it the stream in chunks of any size; it keeps `counts` per "schema.table".

    For the tables in `want`, each run of whole rows goes to `on_block(table, columns, rows)`, where rows is
    the raw COPY text (lines ending in newlines) and columns the names the COPY line gives. Everything passes
    on, in order, to `on_text(bytes)` (outside the rows: SQL, comments, the COPY and \\. lines) and
    `on_rows(bytes)`.
    """

    def __init__(self, want, on_block, on_text=None, on_rows=None):
        self.want, self.on_block = want, on_block
        self.on_text = on_text or (lambda text: None)
        self.on_rows = on_rows or (lambda rows: None)
        self.counts: dict[str, int] = {}
        self._rest = b""
        self.table: str | None = None  # the COPY block being read
        self._columns: list[str] | None = None

    def feed(self, chunk: bytes) -> None:
        data = self._rest + chunk
        cut = data.rfind(b"\n") + 1
        self._rest, data = data[cut:], data[:cut]
        pos = 0
        while pos < len(data):
            pos = self._in_block(data, pos) if self.table else self._header(data, pos)

    def _header(self, data: bytes, pos: int) -> int:
        start = _line_start(data, b"COPY ", pos)
        if start < 0:
            self.on_text(data[pos:])
            return len(data)
        end = data.index(b"\n", start)
        self.on_text(data[pos:end + 1])
        line = data[start:end].decode()
        names = identifiers(line[5:line.rindex(" FROM stdin")])
        table = f"{names[0]}.{names[1]}"
        self.table = table
        self.counts.setdefault(table, 0)
        self._columns = names[2:] if table in self.want else None
        return end + 1

    def _in_block(self, data: bytes, pos: int) -> int:
        end = _line_start(data, END, pos)
        block = data[pos:] if end < 0 else data[pos:end]
        self.counts[self.table] += block.count(b"\n")
        self.on_rows(block)
        if self._columns is not None and block:
            self.on_block(self.table, self._columns, block)
        if end < 0:
            return len(data)
        self.on_text(END)
        self.table = self._columns = None
        return end + len(END)

    def close(self) -> None:
        if self.table:
            raise ValueError("the data stream ended inside a COPY block")
        self.on_text(self._rest)
        self._rest = b""


def _line_start(data: bytes, needle: bytes, pos: int) -> int:
    """Index of `needle` at the start of a line at or after pos (itself a line start), or -1."""
    while True:
        at = data.find(needle, pos)
        if at < 0 or at == pos or data[at - 1] == 10:
            return at
        pos = at + 1

