"""The latency proxy (tests/latency.py) on the session's PostgreSQL: the delay it adds, the round trips it
counts, the handshake it leaves out, the bytes it passes, and the limits it keeps."""

import hashlib
import socket
import struct
import threading
import time

import psycopg
import pytest

from tests.helpers import PASSWORD_USER
from tests.latency import CHUNK, QUEUED, LatencyProxy, merged

RTT = 0.02


@pytest.fixture
def proxy(pg):
    with LatencyProxy(pg.port, rtt=RTT) as p:
        yield p


def test_ten_statements_one_after_the_other_are_ten_round_trips_and_take_ten_rtts(proxy, db_url):
    with psycopg.connect(proxy.url(db_url), autocommit=True) as conn:
        mark, start = proxy.mark(), time.perf_counter()
        for _ in range(10):
            assert conn.execute("select 1", prepare=False).fetchone() == (1,)
        elapsed = time.perf_counter() - start
    counted = proxy.window(mark)
    assert (counted.round_trips, counted.chained, counted.turns, counted.per_connection) == (10, 10, 10, [10])
    assert elapsed >= 10 * RTT
    whole = proxy.window()  # the connection's handshake too: trust auth is one turn, and it is not counted
    assert (whole.round_trips, whole.handshake_turns, whole.connections, whole.tls_connections) == (10, 1, 1, 0)


def test_psycopg_preparing_a_statement_run_a_sixth_time_is_a_round_trip_of_its_own(proxy, db_url):
    """psycopg prepares a statement on its 6th execution (prepare_threshold 5): Parse, then wait, then run."""
    with psycopg.connect(proxy.url(db_url), autocommit=True) as conn:
        mark = proxy.mark()
        for _ in range(10):
            conn.execute("select 1")
    assert proxy.window(mark).round_trips == 11


def test_a_password_handshake_is_three_turns_and_none_is_counted(proxy, pg):
    with psycopg.connect(proxy.url(pg.password_url("postgres")), autocommit=True) as conn:
        conn.execute("select 1")
    whole = proxy.window()
    assert (whole.handshake_turns, whole.round_trips) == (3, 1)  # startup, SCRAM first and final messages


def test_a_pipeline_of_ten_statements_is_one_round_trip(proxy, db_url):
    """psycopg sends the ten statements and the Sync at the end of the block in one flight, and PostgreSQL
    answers them all after the Sync: one turn."""
    with psycopg.connect(proxy.url(db_url), autocommit=True) as conn:
        mark = proxy.mark()
        with conn.pipeline():
            cursors = [conn.execute("select %s::int", (n,)) for n in range(10)]
        assert [c.fetchone()[0] for c in cursors] == list(range(10))
    assert proxy.window(mark).round_trips == 1


def test_ten_connections_each_running_one_statement_at_the_same_moment_are_one_round_trip(proxy, db_url):
    conns = [psycopg.connect(proxy.url(db_url), autocommit=True) for _ in range(10)]
    barrier = threading.Barrier(10)

    def one(conn):
        barrier.wait()
        conn.execute("select pg_sleep(0.2)")

    threads = [threading.Thread(target=one, args=(c,)) for c in conns]
    mark = proxy.mark()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for conn in conns:
        conn.close()
    counted = proxy.window(mark)
    assert (counted.round_trips, counted.chained, counted.turns, counted.per_connection) == (1, 1, 10, [1] * 10)
    assert (counted.connections, proxy.window().connections) == (0, 10)  # opened before the mark


def test_five_connections_each_running_four_statements_at_once_chain_four_round_trips(proxy, db_url):
    """The merged count may be anything from 1 to 4 (how the connections' turns interleave); the chained
    count, the most turns one connection has in each merged interval, is at least 4, and bounds the time."""
    conns = [psycopg.connect(proxy.url(db_url), autocommit=True) for _ in range(5)]
    barrier = threading.Barrier(5)

    def four(conn):
        barrier.wait()
        for _ in range(4):
            conn.execute("select 1", prepare=False)

    threads = [threading.Thread(target=four, args=(c,)) for c in conns]
    mark, start = proxy.mark(), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for conn in conns:
        conn.close()
    counted = proxy.window(mark)
    assert counted.turns == 20 and 1 <= counted.round_trips <= 4 <= counted.chained
    assert elapsed >= counted.chained * RTT


def test_an_encrypted_connection_is_reported_and_all_its_turns_count(proxy, db_url):
    with psycopg.connect(proxy.url(db_url, sslmode="require"), autocommit=True) as conn:
        assert conn.pgconn.ssl_in_use
        mark = proxy.mark()
        for _ in range(3):
            conn.execute("select 1")
    whole, after = proxy.window(), proxy.window(mark)
    assert (whole.tls_connections, whole.handshake_turns, after.round_trips) == (1, 0, 3)
    assert whole.round_trips >= 3 + 2  # SSLRequest and the TLS handshake: unreadable, so counted


def test_a_large_copy_out_passes_intact_in_one_round_trip(proxy, db_url):
    query = "copy (select g, md5(g::text), repeat('x', g % 300) from generate_series(1, 100000) g) to stdout"

    def digest(url: str) -> tuple[str, int]:
        h, size = hashlib.sha256(), 0
        with psycopg.connect(url, autocommit=True) as conn, conn.cursor().copy(query) as copy:
            for block in copy:
                h.update(block)
                size += len(block)
        return h.hexdigest(), size

    direct = digest(db_url)
    mark = proxy.mark()
    assert digest(proxy.url(db_url)) == direct
    assert direct[1] > 15_000_000
    assert proxy.window(mark).round_trips == 1


def _startup(port: int, database: str) -> socket.socket:
    """A bare protocol client (user postgres, trust) at ReadyForQuery."""
    sock = socket.create_connection(("127.0.0.1", port))
    body = struct.pack("!i", 196608) + b"user\0postgres\0database\0" + database.encode() + b"\0\0"
    sock.sendall(struct.pack("!i", len(body) + 4) + body)
    seen = b""
    while b"Z\0\0\0\x05I" not in seen:
        seen += sock.recv(65536)
    return sock


def test_a_client_that_stops_reading_stops_the_proxy_reading_from_the_server(proxy, db_url):
    sock = _startup(proxy.port, db_url.rsplit("/", 1)[1])
    try:
        sql = b"copy (select repeat('x', 1000) from generate_series(1, 100000)) to stdout\0"
        sock.sendall(b"Q" + struct.pack("!i", len(sql) + 4) + sql)
        sock.recv(65536)
        time.sleep(1.0)  # the client reads nothing more; the server keeps 100 MB to send
        conn = proxy.connections[-1]
        held = conn.from_server - conn.to_client
        assert held <= (QUEUED + 2) * CHUNK  # the queue, the stream reader's buffer
        assert conn.from_server < 40_000_000  # what the sockets' buffers hold, not the whole result
    finally:
        sock.close()


def test_connections_beyond_the_maximum_are_closed_and_counted(pg, db_url):
    with LatencyProxy(pg.port, max_connections=2) as proxy:
        kept = [psycopg.connect(proxy.url(db_url)) for _ in range(2)]
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(proxy.url(db_url), connect_timeout=5)
        assert proxy.refused == 1
        for conn in kept:
            conn.close()


@pytest.mark.parametrize("host", ["192.0.2.10", "db.example.invalid"])
def test_a_target_that_is_not_this_machine_is_refused(host):
    with pytest.raises(ValueError, match=host):
        LatencyProxy(5432, target_host=host)


def _own_address() -> str | None:
    """This machine's address on its outward interface (a UDP connect sends nothing), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = udp.getsockname()[0]
    return None if address.startswith("127.") else address


def test_the_proxy_listens_on_loopback_only_and_its_url_points_there(proxy):
    url = proxy.url(f"postgresql://{PASSWORD_USER}:pw@db.example.com:5432/postgres?sslmode=require&hostaddr=1.2.3.4")
    assert url == f"postgresql://{PASSWORD_USER}:pw@127.0.0.1:{proxy.port}/postgres?sslmode=disable"
    socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
    if (address := _own_address()) is None:
        pytest.skip("this machine has no address besides loopback")
    with pytest.raises(OSError):
        socket.create_connection((address, proxy.port), timeout=2)


def test_overlapping_turns_merge_and_a_chain_on_one_connection_counts_its_length():
    assert merged([(0, 1, 0), (0.5, 2, 1), (3, 4, 0), (4, 5, 1), (6, 6, 0)]) == (3, 3)
    # two connections, three turns each in sequence, staggered: one interval, three round trips long
    staggered = [(0, 1, 0), (0.5, 1.5, 1), (1.1, 2, 0), (1.6, 2.5, 1), (2.1, 3, 0), (2.6, 3.5, 1)]
    assert merged(staggered) == (1, 3)
    assert merged([]) == (0, 0)
