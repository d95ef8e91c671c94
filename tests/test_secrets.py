"""Known secret values in the environment never reach stdout, stderr, written files or child argv."""

import secrets
import subprocess

import pytest

from tests.helpers import PASSWORD, silent_port

# Built at run time so that no key-shaped string sits in the repository.
SERVICE_KEY = "eyJ" + secrets.token_urlsafe(24) + "." + secrets.token_urlsafe(30) + "." + secrets.token_urlsafe(20)
ACCESS_TOKEN = "sbp_" + secrets.token_hex(20)
COMMANDS = [("status",), ("verify",), ("local", "url"), ("push", "--via", "cli", "--yes"),
            ("push", "--via", "direct", "--yes"), ("push", "--via", "api", "--yes"), ("push", "--dry-run"),
            ("backup",), ("smoke", "--via", "sql"), ("smoke", "--via", "rest"), ("deploy", "--yes"),
            ("branch", "list")]


@pytest.fixture
def secret_env(clean_env, tmp_path, pg, db_url):
    clean_env.chdir(tmp_path)
    clean_env.setenv("SUPABASE_DB_URL", pg.password_url(db_url.rsplit("/", 1)[1]))
    clean_env.setenv("SUPABASE_SERVICE_ROLE_KEY", SERVICE_KEY)
    clean_env.setenv("SUPABASE_ACCESS_TOKEN", ACCESS_TOKEN)
    clean_env.setenv("SUPABASE_PROJECT_REF", "abcdefghijklmnopqrst")
    clean_env.setenv("SUPABASE_URL", "http://127.0.0.1:9")
    clean_env.setenv("SUPABASE_API_URL", "http://127.0.0.1:9")
    clean_env.setenv("KIT_BACKUP_DIR", str(tmp_path / "backups"))
    clean_env.setenv("KIT_REPORT_DIR", str(tmp_path / "reports"))
    return clean_env


@pytest.fixture
def child_argv(monkeypatch):
    """Every argv handed to subprocess.Popen during the test."""
    seen = []
    real_init = subprocess.Popen.__init__

    def recording_init(self, args, *a, **kw):
        seen.append(" ".join(map(str, args)) if isinstance(args, (list, tuple)) else str(args))
        real_init(self, args, *a, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", recording_init)
    return seen


def leaks(text: str) -> list[str]:
    return [name for name, value in (("password", PASSWORD), ("service key", SERVICE_KEY),
                                     ("access token", ACCESS_TOKEN)) if value in text]


def written_files(root) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a))
def test_no_secret_in_output_files_or_child_argv(argv, secret_env, run_kit, tmp_path, child_argv):
    run = run_kit(*argv)
    assert run.code in (0, 3, 4, 5), run.err
    if argv[0] in ("backup", "deploy"):  # the files that could leak were written, and are read below
        assert list(tmp_path.rglob("manifest.json")), run.err
    if argv[0] == "deploy":  # it gets as far as smoke, whose rest route cannot reach SUPABASE_URL
        assert run.code == 3 and list((tmp_path / "reports").glob("*.json")), run.err
    assert leaks(run.out + run.err) == []
    assert leaks(written_files(tmp_path)) == []
    assert leaks("\n".join(child_argv)) == []


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a))
def test_no_secret_when_the_host_does_not_answer(argv, secret_env, run_kit, tmp_path, child_argv):
    with silent_port() as port:
        secret_env.setenv("KIT_CONNECT_TIMEOUT", "1")
        secret_env.setenv("SUPABASE_DB_URL", f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/x")
        run = run_kit(*argv, "--json")
    assert leaks(run.out + run.err) == []
    assert leaks(written_files(tmp_path)) == []
    assert leaks("\n".join(child_argv)) == []


def test_settings_repr_masks_every_secret(secret_env):
    from kit import settings

    shown = repr(settings.load())
    assert leaks(shown) == []
    assert "service_role_key='****'" in shown and "access_token='****'" in shown


@pytest.mark.parametrize("argv", [("status",), ("backup",), ("push", "--via", "cli", "--yes"), ("deploy", "--yes")],
                         ids=lambda a: " ".join(a))
def test_a_password_in_the_urls_query_is_kept_out_too(argv, secret_env, run_kit, tmp_path, child_argv, pg, db_url):
    """libpq takes `?password=` (and host, port, user, dbname) in the query; the kit moves them into the URL's
    own places as it reads the URL, so the same masking and PGPASSWORD hand-off apply (kit/urls.py)."""
    url = pg.password_url(db_url.rsplit("/", 1)[1])
    user, rest = url.removeprefix("postgresql://").split(":", 1)
    secret_env.setenv("SUPABASE_DB_URL", f"postgresql://{user}@{rest.split('@', 1)[1]}?password={PASSWORD}"
                                         "&application_name=kit%20test")
    run = run_kit(*argv)
    assert run.code in (0, 3), run.err  # deploy reaches smoke, whose rest route cannot reach SUPABASE_URL
    if argv[0] in ("backup", "deploy"):
        manifest = next(tmp_path.rglob("manifest.json")).read_text()
        assert '"database": "postgresql://kit_secret_user:****@127.0.0.1' in manifest
        assert "application_name=kit%20test" in manifest
    assert leaks(run.out + run.err) == []
    assert leaks(written_files(tmp_path)) == []
    assert leaks("\n".join(child_argv)) == []
