"""Readers of the gateway's own kinds of value: phone numbers, PINs, regions, time zones,
hosts, keywords and reply texts. Each says in its error what a good value looks like."""

from __future__ import annotations

import difflib
import ipaddress
import re
import string
import zoneinfo

import phonenumbers
from yaml.nodes import Node

from ..phone import PhoneNumberError, normalize
from .reader import INT_RE, Bad, Context, scalar, shown, text

# Placeholders a reply text may use; str.format fills them in.
REPLY_PLACEHOLDERS = ("name", "code")


def phone(ctx: Context, node: Node, path: str) -> str:
    """A phone number, in E.164 or national in the file's ``default_region``."""
    value = scalar(node, "a phone number").strip()
    try:
        return normalize(value, ctx.region)
    except PhoneNumberError as exc:
        why = str(exc).removeprefix("phone: ")
        raise Bad(
            f"expected a phone number (+ and country code, or national in region "
            f"{ctx.region}), got {shown(node)}: {why}"
        ) from None


def pin(ctx: Context, node: Node, path: str) -> str:
    """A SIM PIN: 4-8 digits, quoted."""
    expected = 'a quoted string of 4-8 digits, such as pin: "0000"'
    value = scalar(node, expected)
    if node.style is None and INT_RE.fullmatch(value):
        # A plain number: every YAML tool but this one would drop its leading zeros, so the
        # file would mean different things to different readers. Ask for quotes.
        raise Bad(f"expected {expected}; put the PIN in quotes, or YAML reads it as a number")
    if not value.isdigit() or not value.isascii() or not 4 <= len(value) <= 8:
        raise Bad(f"expected {expected}, got {shown(node)}")
    return value


def keyword(ctx: Context, node: Node, path: str) -> str:
    """An inbound keyword, upper case with spaces removed (matching ignores both)."""
    value = "".join(scalar(node, "a keyword").split()).upper()
    if not value:
        raise Bad("expected a keyword, got an empty string")
    return value


def reply(ctx: Context, node: Node, path: str) -> str:
    """An automatic reply text; it may use the placeholders of REPLY_PLACEHOLDERS."""
    value = text()(ctx, node, path)
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise Bad(f"a stray brace: {exc}; write {{{{ and }}}} for literal braces") from None
    for name in names:
        if name not in REPLY_PLACEHOLDERS:
            allowed = ", ".join("{" + p + "}" for p in REPLY_PLACEHOLDERS)
            raise Bad(f"unknown placeholder {{{name}}}; a reply may use {allowed}")
    return value


def word(ctx: Context, node: Node, path: str) -> str:
    """A word matched case-insensitively, kept in lower case."""
    return text()(ctx, node, path).strip().lower()


def host(ctx: Context, node: Node, path: str) -> str:
    """An IP address or host name to listen on."""
    value = scalar(node, "an IP address or host name").strip()
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*", value):
        return value
    raise Bad(f"expected an IP address (such as 0.0.0.0) or host name, got {shown(node)}")


def region(ctx: Context, node: Node, path: str) -> str:
    """A two-letter region code known to phonenumbers, upper case."""
    value = scalar(node, "a two-letter region code such as US").strip().upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise Bad(
            f"expected a two-letter region code known to phonenumbers (US, GB, DE, KE, ...), "
            f"got {shown(node)}"
        )
    return value


def timezone(ctx: Context, node: Node, path: str) -> str:
    """An IANA time zone name, with the closest known one suggested when it is not."""
    value = scalar(node, "an IANA timezone name such as Europe/Paris").strip()
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(value, sorted(zoneinfo.available_timezones()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise Bad(
            f"expected an IANA timezone name such as Europe/Paris, got {shown(node)}{hint}"
        ) from None
    return value


def scan_pattern(ctx: Context, node: Node, path: str) -> str:
    """An absolute device path or glob where modems are looked for."""
    value = scalar(node, "an absolute device path or glob such as /dev/ttyUSB*").strip()
    if not value.startswith("/"):
        raise Bad(f"expected an absolute device path or glob such as /dev/ttyUSB*, got {value!r}")
    return value


def short_code_text(ctx: Context, node: Node, path: str) -> str:
    """A short code: 1-15 letters or digits."""
    value = scalar(node, "a short code such as 55123").strip()
    if not re.fullmatch(r"[A-Za-z0-9]{1,15}", value):
        raise Bad(f"expected a short code of 1-15 letters or digits, got {shown(node)}")
    return value


# -- webhooks (issue 12) -------------------------------------------------------------------

# The families of events a webhook may ask for (the store's columns, store/webhooks.py
# FAMILIES: a test keeps the two equal; config does not import the store).
WEBHOOK_EVENTS = ("inbound", "status", "opt", "broadcast")
WEBHOOK_SECRET_MIN = 16  # characters: a short secret signs nothing an attacker cannot guess


def webhook_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a webhook's address (None: nothing): the one rule for the
    configuration file, Settings and ``gateway webhook add``. An absolute http or https URL
    with a host, no credentials in it (they would be logged and shown), no fragment."""
    from urllib.parse import urlsplit

    if not url or url != url.strip() or any(c.isspace() for c in url):
        return "a webhook URL may not be empty or hold spaces"
    if not url.isascii() or any(ord(c) < 32 or ord(c) == 127 for c in url):
        return (
            "a webhook URL is plain ASCII: percent-encode other characters in its path, and "
            "write an international host name in its xn-- form"
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"a webhook URL starts with http:// or https://, not {parts.scheme or url!r}"
    if not parts.hostname:
        return "a webhook URL names a host, such as https://example.org/hooks/sms"
    if parts.username or parts.password:
        return "a webhook URL may not hold a user name or password (the secret signs each POST)"
    if parts.fragment:
        return "a webhook URL may not hold a #fragment"
    if port == 0:
        return "a webhook URL's port may not be 0"
    return None


def webhook_url(ctx: Context, node: Node, path: str) -> str:
    """A webhook's URL (see :func:`webhook_url_problem`)."""
    value = scalar(node, "a URL such as https://example.org/hooks/sms")
    problem = webhook_url_problem(value)
    if problem is not None:
        raise Bad(f"{problem}; got {shown(node)}")
    return value


def webhook_secret(ctx: Context, node: Node, path: str) -> str:
    """A webhook's signing secret: at least 16 characters, no spaces at either end."""
    value = scalar(node, f"a secret of at least {WEBHOOK_SECRET_MIN} characters")
    if len(value) < WEBHOOK_SECRET_MIN or value != value.strip():
        raise Bad(
            f"expected a secret of at least {WEBHOOK_SECRET_MIN} characters without spaces at"
            f" either end (python3 -c 'import secrets; print(secrets.token_hex(32))' makes one),"
            f" got {len(value)} characters"
        )
    return value
