"""Masks secrets before any text leaves the kit.

A URL is parsed and only its password field is masked: a password that also spells the user, the
database or part of the scheme (`postgres`) leaves those as they are. Outside URLs, every occurrence
of a known secret is masked.
"""

import re
from urllib.parse import quote, urlsplit

MASK = "****"
# Placeholders in the kit's own example URLs are not secrets.
PLACEHOLDERS = {"PASSWORD", "YOUR-PASSWORD", MASK}
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>`]+", re.I)
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'[^']*'|[^\s&]+)", re.I)  # key=value or URL query
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")
_TOKENS = re.compile(r"\b(sbp_[0-9a-f]{16,}|sb_secret_[A-Za-z0-9_-]{8,})")


def mask_url(url: str | None) -> str:
    """The URL with its password field, and only that, replaced by ****."""
    if not url:
        return ""
    parts = _split(url)
    if parts is None:
        return url
    scheme, rest = url.split("://", 1)
    netloc_end = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0], default=len(rest))
    netloc, tail = rest[:netloc_end], rest[netloc_end:]
    userinfo, at, hostport = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user, _, password = userinfo.partition(":")
    if password in PLACEHOLDERS:
        return url
    return f"{scheme}://{user}:{MASK}@{hostport}{tail}"


def _split(url: str):
    try:
        parts = urlsplit(url)
        return parts if parts.scheme and parts.netloc else None
    except ValueError:
        return None


def url_host(url: str | None) -> str:
    """host:port of a URL, for messages and report names."""
    try:
        parts = urlsplit(url or "")
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    except ValueError:
        return "an unparsable URL"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Text with every URL password, known secret, JWT and access token masked."""
    pieces, last = [], 0
    for match in _URL.finditer(text):
        pieces.append(_mask_secrets(text[last:match.start()], secrets))
        pieces.append(mask_url(match.group(0)))
        last = match.end()
    pieces.append(_mask_secrets(text[last:], secrets))
    text = "".join(pieces)
    text = _KEYWORD_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    text = _JWT.sub(MASK, text)
    return _TOKENS.sub(MASK, text)


def _mask_secrets(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK).replace(quote(secret, safe=""), MASK)
    return text
