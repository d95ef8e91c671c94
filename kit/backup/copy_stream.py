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
    `on_rows(rows)`. Rows are a memoryview into the chunk, valid during the call only: the rows are never
    copied on their way through.
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
        start = 0
        if self._rest:  # finish the line the last chunk left open, then read the chunk where it stands
            newline = chunk.find(b"\n")
            if newline < 0:
                self._rest += chunk
                return
            line, self._rest = self._rest + chunk[:newline + 1], b""
            self._lines(line, 0, len(line))
            start = newline + 1
        limit = chunk.rfind(b"\n", start) + 1
        self._rest = chunk[max(limit, start):]
        self._lines(chunk, start, limit)

    def _lines(self, data: bytes, pos: int, limit: int) -> None:
        """Read data[pos:limit], whole lines."""
        view = memoryview(data)
        while pos < limit:
            pos = self._in_block(self.table, data, view, pos, limit) if self.table else self._header(data, pos, limit)

    def _header(self, data: bytes, pos: int, limit: int) -> int:
        start = _line_start(data, b"COPY ", pos, limit)
        if start < 0:
            self.on_text(data[pos:limit])
            return limit
        end = data.index(b"\n", start)
        self.on_text(data[pos:end + 1])
        line = data[start:end].decode()
        names = identifiers(line[5:line.rindex(" FROM stdin")])
        table = f"{names[0]}.{names[1]}"
        self.table = table
        self.counts.setdefault(table, 0)
        self._columns = names[2:] if table in self.want else None
        return end + 1

    def _in_block(self, table: str, data: bytes, view: memoryview, pos: int, limit: int) -> int:
        end = _block_end(data, pos, limit)
        stop = limit if end < 0 else end
        self.counts[table] += data.count(b"\n", pos, stop)
        if stop > pos:
            self.on_rows(view[pos:stop])
            if self._columns is not None:
                self.on_block(table, self._columns, view[pos:stop])
        if end < 0:
            return limit
        self.on_text(END)
        self.table = self._columns = None
        return end + len(END)

    def close(self) -> None:
        if self.table:
            raise ValueError("the data stream ended inside a COPY block")
        self.on_text(self._rest)
        self._rest = b""


def _line_start(data: bytes, needle: bytes, pos: int, limit: int) -> int:
    """Index of `needle` at the start of a line in data[pos:limit] (pos itself a line start), or -1."""
    while True:
        at = data.find(needle, pos, limit)
        if at < 0 or at == pos or data[at - 1] == 10:
            return at
        pos = at + 1


def _block_end(data: bytes, pos: int, limit: int) -> int:
    """Index of the `\\.` line that ends the COPY block in data[pos:limit] (pos a line start), or -1. The
    needle starts with the newline before it, which makes the search skip faster; a match is a line start."""
    if data.startswith(END, pos, limit):
        return pos
    at = data.find(b"\n" + END, pos, limit)
    return at + 1 if at >= 0 else -1
