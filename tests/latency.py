"""A TCP proxy on loopback that puts a round-trip time between a client and PostgreSQL and counts round trips.

    with LatencyProxy(pg_port, rtt=0.05) as proxy:
        mark = proxy.mark()
        run_something(proxy.url(database_url))      # 127.0.0.1:<proxy port>, sslmode=disable
        print(proxy.window(mark).round_trips)

Delay: every chunk read from one side is written to the other rtt/2 after it was read, in order, with no
bandwidth limit (a chunk read at t is written at t + rtt/2; a later chunk waits for an earlier one only
to keep the order). Bounded: at most `max_connections` at a time (more are closed at once and counted
in `refused`), and per direction at most QUEUED chunks of at most CHUNK bytes in flight: a side that
reads slowly stops the proxy reading from the other, so memory does not grow.

What it counts, on each connection and then over all of them:
- a *turn* starts when the client sends bytes and the server's answer to its previous turn has reached
  the client (or it is the client's first send); it ends with the last server bytes that reach the
  client before the client's next turn. Bytes the client sends while it has not yet heard back belong
  to the same turn (a pipeline, COPY data). A send that gets no answer at all (Terminate, as a
  connection closes) is not a turn. Times are taken at the proxy: a turn runs from when it read the
  client's first bytes to when it wrote the last server bytes to the client;
- *after open*: for a plaintext connection the server's messages (1 type byte, 4-byte big-endian length)
  are followed up to the first ReadyForQuery ('Z'); the turns up to the one that delivered it are the
  handshake (SSLRequest or GSSENCRequest answered 'N', startup, authentication) and are not counted. A
  connection whose SSLRequest was answered 'S' (or GSSENCRequest 'G') is encrypted and cannot be read:
  all its turns count, and it is reported as `tls`;
- *sequential round trips* of a period: the turns after open that started in it, on all connections,
  as time intervals, merged where they overlap; the number of merged intervals. Twenty inserts sent at
  once on twenty connections count about 1, a pipeline of ten statements sent in one flight counts 1,
  ten statements one after the other count 10;
- *chained round trips*: the same merged intervals, each counted as the most turns one connection has in
  it, summed. A turn waits for the answer to the one before it on its connection, so an interval costs
  at least that many round-trip times. It equals the count above in the three examples, and differs
  where connections overlap while each runs several statements in sequence: twenty inserts on five
  connections, four turns each, staggered, merge into one interval that took four round trips or more.

`proxy.mark()` is a time (time.monotonic, the same clock in every process on the machine, so a child
process can report its own marks); `proxy.window(since, until)` counts the turns that started between
the two, and the connections opened between them.
"""

import asyncio
import ipaddress
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104  # the codes of the 8-byte requests sent before startup
CHUNK = 64 * 1024  # the most read from a socket at once
QUEUED = 64  # chunks in flight per direction: 4 MiB, about 160 MB/s at 50 ms


@dataclass
class Turn:
    start: float
    end: float | None = None  # when the last answer bytes reached the client; None: no answer yet


class Framing:
    """Where a plaintext connection's handshake ends: the one-byte answers to SSLRequest/GSSENCRequest,
    then the server's messages up to the first ReadyForQuery."""

    def __init__(self):
        self.state = "startup"  # startup, open (ReadyForQuery seen), encrypted (cannot be read)
        self.request = bytearray()  # the first 8 bytes of the client's next message, before its startup
        self.negotiating = True  # the client has not sent its startup message yet
        self.answers = 0  # one-byte answers owed to SSLRequest/GSSENCRequest
        self.header = bytearray()  # the server's current message header, while incomplete
        self.skip = 0  # bytes of the server's current message body still to pass over

    def client(self, data: bytes) -> None:
        while self.state == "startup" and self.negotiating and data:
            need = 8 - len(self.request)
            self.request += data[:need]
            data = data[need:]
            if len(self.request) == 8:
                length, code = struct.unpack("!ii", self.request)
                self.request.clear()
                if length == 8 and code in (SSL_REQUEST, GSSENC_REQUEST):
                    self.answers += 1
                else:
                    self.negotiating = False

    def server(self, data: bytes) -> bool:
        """True when the first ReadyForQuery starts in `data`."""
        at = 0
        while self.state == "startup" and at < len(data):
            if self.answers:
                self.answers -= 1
                self.state = "encrypted" if data[at:at + 1] in (b"S", b"G") else self.state
                at += 1
            elif self.skip:
                passed = min(self.skip, len(data) - at)
                self.skip -= passed
                at += passed
            else:
                need = 5 - len(self.header)
                self.header += data[at:at + need]
                at += min(need, len(data) - at)
                if len(self.header) == 5:
                    kind, length = struct.unpack("!ci", self.header)
                    self.header.clear()
                    if kind == b"Z":
                        self.state = "open"
                        return True
                    self.skip = length - 4
        return False


@dataclass
class Connection:
    id: int
    opened: float
    framing: Framing = field(default_factory=Framing)
    turns: list[Turn] = field(default_factory=list)
    handshake: int | None = None  # turns up to the one that delivered the first ReadyForQuery
    from_server: int = 0  # bytes read from the server; minus to_client: what the proxy holds
    to_client: int = 0

    @property
    def tls(self) -> bool:
        return self.framing.state == "encrypted"

    def split(self) -> tuple[list[Turn], list[Turn]]:
        """(handshake turns, turns after open), each only the answered ones."""
        answered = [t for t in self.turns if t.end is not None]
        if self.tls:
            return [], answered
        if self.handshake is None:
            return answered, []
        return answered[:self.handshake], answered[self.handshake:]


@dataclass
class Window:
    round_trips: int  # sequential round trips: the turns after open, merged where they overlap
    chained: int  # the merged intervals, each counted as the most turns one connection has in it
    turns: int  # turns after open, summed over the connections
    handshake_turns: int
    connections: int  # connections opened in the window
    tls_connections: int
    per_connection: list[int]  # turns after open of each connection with a turn in the window, by id


def merged(turns: list[tuple[float, float, int]]) -> tuple[int, int]:
    """(the intervals left once overlapping ones merge, the chained count) of turns as (start, end, connection)."""
    count = chained = 0
    end: float | None = None
    per: dict[int, int] = {}  # turns of each connection in the current interval
    for start, stop, conn in sorted(turns):
        if end is None or start > end:
            count, chained, end, per = count + 1, chained + max(per.values(), default=0), stop, {}
        else:
            end = max(end, stop)
        per[conn] = per.get(conn, 0) + 1
    return count, chained + max(per.values(), default=0)


def require_loopback(host: str) -> None:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except OSError as exc:
        raise ValueError(f"cannot resolve {host}: {exc}") from None
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise ValueError(f"{host} is not a loopback address: the latency proxy forwards only on this machine")


class LatencyProxy:
    """A context manager: a proxy to target_host:target_port (loopback only) listening on 127.0.0.1."""

    def __init__(self, target_port: int, rtt: float = 0.0, *, target_host: str = "127.0.0.1",
                 max_connections: int = 64):
        require_loopback(target_host)
        if rtt < 0 or max_connections < 1:
            raise ValueError("rtt must be >= 0 and max_connections >= 1")
        self.target = (target_host, target_port)
        self.rtt, self.max_connections = rtt, max_connections
        self.port = 0
        self.refused = 0
        self.connections: list[Connection] = []
        self._lock = threading.Lock()  # the counts are written in the proxy's thread, read in the caller's
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None

    def __enter__(self) -> "LatencyProxy":
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._failure or not self.port:
            raise RuntimeError(f"the latency proxy did not start: {self._failure}")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def url(self, url: str, sslmode: str | None = "disable") -> str:
        """`url` (user, password, database, parameters kept) through the proxy at 127.0.0.1; its sslmode
        replaced by `sslmode` (None: the URL's own), so a plaintext connection is readable by default."""
        parts = urlsplit(url)
        user = parts.netloc.rpartition("@")[0]
        netloc = (user + "@" if user else "") + f"127.0.0.1:{self.port}"
        drop = ("host", "hostaddr", "port") + (("sslmode",) if sslmode else ())
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in drop]
        query += [("sslmode", sslmode)] if sslmode else []
        return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="/:"), parts.fragment))

    @staticmethod
    def mark() -> float:
        return time.monotonic()

    def window(self, since: float = 0.0, until: float = float("inf")) -> Window:
        with self._lock:
            split = [(c, *c.split()) for c in self.connections]
        inside = [(c, [t for t in hand if since <= t.start <= until], [t for t in after if since <= t.start <= until])
                  for c, hand, after in split]
        opened = [c for c, _, _ in inside if since <= c.opened <= until]
        round_trips, chained = merged([(t.start, t.end, c.id) for c, _, after in inside for t in after])
        return Window(round_trips=round_trips, chained=chained,
                      turns=sum(len(after) for _, _, after in inside),
                      handshake_turns=sum(len(hand) for _, hand, _ in inside),
                      connections=len(opened), tls_connections=sum(c.tls for c in opened),
                      per_connection=[len(after) for c, hand, after in inside if hand or after])

    # The proxy's own thread from here on.

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by __enter__ when it happens before the proxy listens
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        tasks: set[asyncio.Task] = set()

        async def accept(reader, writer):
            tasks.add(asyncio.current_task())
            try:
                await self._serve(reader, writer, len(tasks))
            except asyncio.CancelledError:  # the proxy stops: the connection ends here, quietly
                pass
            finally:
                tasks.discard(asyncio.current_task())

        server = await asyncio.start_server(accept, "127.0.0.1", 0, limit=CHUNK, backlog=self.max_connections)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, active: int) -> None:
        if active > self.max_connections:
            self.refused += 1
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self.target, limit=CHUNK)
        except OSError:
            client_w.transport.abort()
            return
        with self._lock:
            conn = Connection(len(self.connections), time.monotonic())
            self.connections.append(conn)
        up, down = asyncio.Queue(QUEUED), asyncio.Queue(QUEUED)
        tasks = [asyncio.create_task(c) for c in (self._read(client_r, up, conn, upstream=True),
                                                  self._deliver(up, server_w, conn, upstream=True),
                                                  self._read(server_r, down, conn, upstream=False),
                                                  self._deliver(down, client_w, conn, upstream=False))]
        try:  # both directions to their end, or the first failure (a reset, a write to a closed side) ends all
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            for w in (client_w, server_w):
                w.transport.abort()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, reader: asyncio.StreamReader, queue: asyncio.Queue, conn: Connection,
                    upstream: bool) -> None:
        """Read one direction and queue each chunk with the time it is due; a full queue stops the reading."""
        while data := await reader.read(CHUNK):
            if upstream:
                self._client_sent(conn, data)
            else:
                conn.from_server += len(data)
            await queue.put((time.monotonic() + self.rtt / 2, data))
        await queue.put((time.monotonic() + self.rtt / 2, b""))

    async def _deliver(self, queue: asyncio.Queue, writer: asyncio.StreamWriter, conn: Connection,
                       upstream: bool) -> None:
        while True:
            due, data = await queue.get()
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            if not data:  # end of stream: pass the half-close on
                if writer.can_write_eof() and not writer.is_closing():
                    writer.write_eof()
                return
            if not upstream:
                self._answer_delivered(conn, data)
            writer.write(data)
            await writer.drain()
            conn.to_client += len(data) if not upstream else 0

    def _client_sent(self, conn: Connection, data: bytes) -> None:
        with self._lock:
            if not conn.turns or conn.turns[-1].end is not None:
                conn.turns.append(Turn(time.monotonic()))
            conn.framing.client(data)

    def _answer_delivered(self, conn: Connection, data: bytes) -> None:
        with self._lock:
            if conn.turns:
                conn.turns[-1].end = time.monotonic()
            if conn.framing.server(data) and conn.handshake is None:
                conn.handshake = sum(t.end is not None for t in conn.turns)
