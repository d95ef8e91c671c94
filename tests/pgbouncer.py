"""A real PgBouncer (Debian's `pgbouncer`), started on a free port in front of the test server.

scripts/test.sh installs the package when it is missing. PgBouncer refuses to run as root, so as
root it runs as the server's own user, from a folder that user owns.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from kit.local import server as local
from tests.helpers import free_port

CONFIG = """[databases]
* = host=127.0.0.1 port={pg_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = {mode}
default_pool_size = 4
ignore_startup_parameters = extra_float_digits,options
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""


def binary() -> str | None:
    return shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer",) if Path(p).exists()), None)


@contextmanager
def pgbouncer(pg_port: int, mode: str, users=("postgres",)):
    """Yield the port of a PgBouncer in `mode` (session or transaction) in front of 127.0.0.1:pg_port."""
    folder = Path(tempfile.mkdtemp(prefix="kit-pgbouncer-"))
    port = free_port()
    (folder / "pgbouncer.ini").write_text(CONFIG.format(pg_port=pg_port, port=port, folder=folder, mode=mode))
    (folder / "users.txt").write_text("".join(f'"{u}" ""\n' for u in users))
    user = None
    if os.geteuid() == 0:
        user = local.SERVER_USER
        for path in [folder, *folder.iterdir()]:
            shutil.chown(path, user, user)
    process = subprocess.Popen([binary(), str(folder / "pgbouncer.ini")], user=user, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(port, process, folder)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for(port: int, process: subprocess.Popen, folder: Path) -> None:
    for _ in range(200):
        if process.poll() is not None:
            log = (folder / "pgbouncer.log").read_text() if (folder / "pgbouncer.log").exists() else ""
            raise RuntimeError(f"pgbouncer exited: {process.stderr.read().decode()} {log}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("pgbouncer did not listen within 10 s")
