"""Masks secrets before any text leaves the kit."""

import re
from urllib.parse import quote, urlsplit

MASK = "****"
# Placeholders in the kit's own example URLs are not secrets.
PLACEHOLDERS = {"PASSWORD", "YOUR-PASSWORD", MASK}
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<at>@)", re.I)
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")
_TOKENS = re.compile(r"\b(sbp_[0-9a-f]{16,}|sb_secret_[A-Za-z0-9_-]{8,})")


def mask_url(url: str | None) -> str:
    """The URL with its password replaced by ****."""
    if not url:
        return ""
    return _URL_PASSWORD.sub(_mask_password, url)


def url_host(url: str | None) -> str:
    """host:port of a URL, for messages and report names."""
    try:
        parts = urlsplit(url or "")
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    except ValueError:
        return "an unparsable URL"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Text with every known secret, URL password, JWT and access token masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK).replace(quote(secret, safe=""), MASK)
    text = _URL_PASSWORD.sub(_mask_password, text)
    text = _KEYWORD_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    text = _JWT.sub(MASK, text)
    return _TOKENS.sub(MASK, text)


def _mask_password(match: re.Match) -> str:
    password = match["pw"] if match["pw"] in PLACEHOLDERS else MASK
    return match["head"] + password + match["at"]
