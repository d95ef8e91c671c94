"""The local default: a PostgreSQL server with contrib, set up like a Supabase database.

As on Supabase, the bootstrap superuser is `supabase_admin` and the kit connects as `postgres`,
which is not a superuser. Run as root, the server runs as the wheel's helper user from a kit-owned
folder (KIT_CACHE_DIR, /var/lib/supabase-kit): the kit never changes the mode or owner of a folder
it did not create, so the checkout and KIT_LOCAL_DIR may lie under a 0700 folder.
"""

import hashlib
import os
import shutil
import socket
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from kit import db
from kit.errors import ConfigError, ConnectError, ToolMissing
from kit.files import safe_name
from kit.local import demo as local_demo, pgserver
from kit.migrations import history, workdir
from kit.settings import LOCAL_DEFAULT, Settings

SQL_DIR = Path(__file__).parents[1] / "sql"
DATABASE = "postgres"
ADMIN = "supabase_admin"
USER = "postgres"
SERVER_USER = pgserver.SERVER_USER


@dataclass(frozen=True)
class LocalServer:
    url: str
    port: int
    data_dir: Path
    created: bool
    note: str | None = None  # e.g. why the demo data was left out

    @property
    def admin_url(self) -> str:
        return _url(self.port, ADMIN)


def cluster_dir(settings: Settings) -> Path:
    """Where the local default's data and log live: its home (home_dir()), or as root a kit-owned folder for it."""
    return _cluster_of(settings, home_dir(settings))


def home_dir(settings: Settings) -> Path:
    """The local default's own folder: KIT_LOCAL_DIR for the kit's own migrations; for an app's (--workdir, or run
    from inside it) a folder of its own under KIT_LOCAL_DIR/apps/. A local default is built from the migrations
    of the folder it is first started for, so another app must not be handed that one."""
    project = workdir.project_dir(settings).resolve()
    if project == workdir.kit_dir().resolve():
        return settings.local_dir
    key = hashlib.sha256(str(project).encode()).hexdigest()[:8]
    return settings.local_dir / "apps" / f"{safe_name(project.name)}-{key}"


def _cluster_of(settings: Settings, home: Path) -> Path:
    if os.geteuid() != 0:
        return home
    key = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]
    return settings.cache_dir / "clusters" / key


def url(settings: Settings) -> str | None:
    """The running local server's URL, or None when it is not running."""
    port = running_port(cluster_dir(settings))
    return _url(port, USER) if port else None


def running_port(folder: Path) -> int | None:
    pid_file = folder / "data" / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 4 or not _alive(int(lines[0])):
        return None
    return int(lines[3])


def up(settings: Settings, *, seed: bool = True, prepare_db: bool = True) -> LocalServer:
    """Start the local server, creating and seeding it on first use."""
    require_dir_writable(settings.local_dir)
    home = home_dir(settings)
    if os.geteuid() == 0:  # there it only names its cluster folder: destroy() finds it again by it
        home.mkdir(parents=True, exist_ok=True)
    folder = _cluster_of(settings, home)
    server = start_cluster(settings, folder, major_of(settings, folder))
    if server.created and prepare_db:
        try:
            note = prepare(settings.with_db_url(server.url), admin_url=server.admin_url, seed=seed)
            server = replace(server, note=note)
        except BaseException:
            stop_cluster(settings, folder, major_of(settings, folder))
            shutil.rmtree(folder / "data", ignore_errors=True)
            raise
    return server


def down(settings: Settings) -> bool:
    """Stop the local server; False when it was not running."""
    folder = cluster_dir(settings)
    if not running_port(folder):
        return False
    stop_cluster(settings, folder, major_of(settings, folder))
    return True


def destroy(settings: Settings) -> None:
    """Stop the local servers under KIT_LOCAL_DIR (the kit's own and every app's) and delete their data (tests)."""
    apps = settings.local_dir / "apps"
    for home in [settings.local_dir, *sorted(p for p in apps.glob("*") if p.is_dir())]:
        folder = _cluster_of(settings, home)
        if running_port(folder):
            stop_cluster(settings, folder, major_of(settings, folder))
        shutil.rmtree(folder / "data", ignore_errors=True)
        if folder != settings.local_dir:
            shutil.rmtree(folder, ignore_errors=True)


def major_of(settings: Settings, folder: Path) -> int:
    """The major of an existing data folder, else KIT_PG_MAJOR."""
    try:
        return int((folder / "data" / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return settings.pg_major


def start_cluster(settings: Settings, folder: Path, major: int) -> LocalServer:
    """Start (initialising on first use) the server whose data is folder/data; log in folder/server.log."""
    data, log = folder / "data", folder / "server.log"
    port = running_port(folder)
    if port:
        return LocalServer(_url(port, USER), port, data, False)
    bindir = pgserver.server_bin(settings, major)
    pgserver.owned_dir(folder)
    created = not (data / "PG_VERSION").exists()
    if created:
        _initdb(bindir, data)
    port = _free_port()
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k ''"
    if pgserver.has_library(bindir, "pg_stat_statements"):
        options += " -c shared_preload_libraries=pg_stat_statements"
    try:  # TCP only: a socket path under a long home folder passes the 107-byte limit of Unix sockets
        _run_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                             "-w", "-t", "60", "start"])
    except ToolMissing as exc:
        raise ConnectError(f"the local PostgreSQL did not start: {_last_fatal(log) or exc}; its log is {log}") from None
    return LocalServer(_url(port, USER), port, data, created)


def stop_cluster(settings: Settings, folder: Path, major: int, mode: str = "fast") -> None:
    """Stop the server; mode `immediate` for a throwaway one, whose data is deleted next (no checkpoint)."""
    _run_as_server_user([str(pgserver.server_bin(settings, major) / "pg_ctl"), "-D", str(folder / "data"),
                         "-m", mode, "-w", "stop"])


def restart_cluster(settings: Settings, folder: Path) -> None:
    """Restart a running server in place, on the same port (fault tests)."""
    _run_as_server_user([str(pgserver.server_bin(settings, major_of(settings, folder)) / "pg_ctl"),
                         "-D", str(folder / "data"), "-l", str(folder / "server.log"), "-m", "fast", "-w", "restart"])


def prepare(settings: Settings, *, admin_url: str, seed: bool = True) -> str | None:
    """Give a database Supabase's roles, schemas, extensions and grants (as supabase_admin), then every
    migration before the name-key change (recorded as the CLI records them: the kit's baseline, or a
    team repo's own history) and data as `postgres`. Returns a note when the demo data was left out."""
    with db.session(settings, admin_url) as conn:
        conn.execute((SQL_DIR / "supabase_env.sql").read_text().encode())
    before = workdir.before_change(settings)
    with db.session(settings) as conn:
        for migration in before:
            history.apply(conn, migration)
        return seed_demo_data(conn) if seed else None


def seed_demo_data(conn) -> str | None:
    """The demo rows, fitted to the tables the migrations made (kit/local/demo.py); a note when left out."""
    return local_demo.seed(conn, (SQL_DIR / "local_data.sql").read_text().encode())


def _initdb(bindir: Path, data: Path) -> None:
    pgserver.owned_dir(data)
    _run_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", ADMIN, "--auth=trust",
                         "--encoding=UTF8", "--locale=C.UTF-8"])


def _run_as_server_user(argv: list[str]) -> None:
    result = pgserver.run_as_server_user(argv)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ToolMissing(f"{Path(argv[0]).name} failed: {detail[-1] if detail else 'no output'}")


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


def _url(port: int, user: str) -> str:
    """The kit's own servers speak no TLS: sslmode=disable says so, whatever PGSSLMODE asks of the target (and
    saves the round trip in which a server without TLS refuses it)."""
    return f"postgresql://{user}@127.0.0.1:{port}/{DATABASE}?sslmode=disable"


def require_dir_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}; set KIT_LOCAL_DIR to a writable folder") from None


def resolve(settings: Settings, notes: list | None = None) -> Settings:
    """Settings with a database URL: the configured one, else the local default (started if needed);
    a note from creating it (no demo data) is appended to `notes`."""
    if settings.db_url:
        return settings
    server = up(settings)
    if server.note and notes is not None:
        notes.append(server.note)
    return settings.with_db_url(server.url, LOCAL_DEFAULT)


@contextmanager
def temporary(settings: Settings, major: int):
    """A throwaway server of `major` with contrib; yields its superuser URL, then stops and deletes it."""
    folder = pgserver.owned_dir(settings.cache_dir / "scratch" / uuid.uuid4().hex[:12])
    try:
        server = start_cluster(settings, folder, major)
        try:
            yield server.admin_url
        finally:
            stop_cluster(settings, folder, major, "immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
