"""One error hierarchy; each class carries the exit code the CLI documents."""


class KitError(Exception):
    """Base of every error the kit reports; the message is one line."""

    exit_code = 1


class ConfigError(KitError):
    """A flag, environment variable, .env value or file is missing or malformed."""

    exit_code = 2


class ConnectError(KitError):
    """The database could not be reached or refused the credentials."""

    exit_code = 3


class Refused(KitError):
    """The kit refused to go on because going on would be unsafe."""

    exit_code = 4


class CheckFailed(KitError):
    """A verify or smoke check failed."""

    exit_code = 5


class ToolMissing(KitError):
    """A client tool (Supabase CLI, pg_dump) is missing or unusable."""

    exit_code = 6


class BackupError(KitError):
    """A backup could not be made, or a backup folder is incomplete or altered."""

    exit_code = 7


class Interrupted(KitError):
    """The operator pressed Ctrl-C."""

    exit_code = 130
