"""What a request to send a text may hold: the one set of rules for its fields.

Every way in (the control socket behind ``gateway send``, the CLI itself, the web JSON API, the
Text This Profile form) and :meth:`Outbox.submit` beneath them check a send request here, so the
limits and the words of each refusal are the same everywhere. Nothing is cut, trimmed or
converted to make it fit: a value that does not fit is refused with the field it came in, so
what goes out is always what was asked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_TEXT_CHARS = 10_000  # far above any SMS (10 parts are < 1,600); stops absurd posts early
MAX_KEY_CHARS = 200
MAX_NUMBER_CHARS = 40  # the longest way to type an E.164 number, with spaces and brackets
MAX_SHORT_CODE_CHARS = 32
MAX_USER_CHARS = 64

# C0 controls other than tab, line feed, form feed (GSM 7-bit has it) and carriage return, DEL,
# and the C1 controls: none of them is something a person means to text, and NUL ends a string
# in many a tool downstream.
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class SendRefused(ValueError):
    """The text was not accepted; ``field`` names what was wrong, the message (``reason``) says
    why in words a user can act on: a whole sentence, capital first and a full stop last, shown
    as it is by the web pages, the API and the CLI."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class IdempotencyConflict(SendRefused):
    """The idempotency key was already used for a different message (another recipient, text
    or short code). The web API answers 409; nothing new is stored."""

    def __init__(self, reason: str) -> None:
        super().__init__("idempotency_key", reason)


def _cap(words: str) -> str:
    """``words`` with a capital first letter (a sentence's start)."""
    return words[:1].upper() + words[1:]


def _string(field: str, value: Any, what: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise SendRefused(field, f"{_cap(what)} must be a string, not {_json_type(value)}.")
    if len(value) > max_chars:
        raise SendRefused(
            field, f"{_cap(what)} is too long ({len(value):,} characters; {max_chars:,} at most)."
        )
    if _SURROGATE.search(value):
        raise SendRefused(
            field, f"{_cap(what)} holds a lone UTF-16 surrogate, which is not a character."
        )
    return value


def _no_controls(field: str, value: str, what: str, pattern: re.Pattern[str]) -> str:
    bad = pattern.search(value)
    if bad:
        raise SendRefused(
            field,
            f"{_cap(what)} holds the control character U+{ord(bad.group()):04X} at position "
            f"{bad.start() + 1}.",
        )
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_text(value: Any) -> str:
    """The text of a message as given (line breaks, tabs and form feeds allowed, other control
    characters and lone surrogates not); emptiness and SMS length are the codec's to judge."""
    text = _string("text", value, "the text", MAX_TEXT_CHARS)
    return _no_controls("text", text, "the text", _TEXT_CONTROLS)


def check_recipient(value: Any) -> str:
    """A recipient number as typed (normalised later with the configured region)."""
    if value is None or value == "":
        raise SendRefused("to", "A recipient number is required.")
    number = _string("to", value, "the recipient", MAX_NUMBER_CHARS)
    return _no_controls("to", number, "the recipient", _ANY_CONTROL)


def check_short_code(value: Any) -> str | None:
    """A short code's name, or None (empty or missing) for the profile's usual one."""
    if value is None or value == "":
        return None
    code = _string("short_code", value, "the short code", MAX_SHORT_CODE_CHARS)
    return _no_controls("short_code", code, "the short code", _ANY_CONTROL)


def check_key(value: Any) -> str | None:
    """An idempotency key, or None (empty or missing). Taken whole: a key longer than
    ``MAX_KEY_CHARS`` is refused, never cut, so two different keys never become one."""
    if value is None or value == "":
        return None
    key = _string("idempotency_key", value, "the idempotency key", MAX_KEY_CHARS)
    _no_controls("idempotency_key", key, "the idempotency key", _ANY_CONTROL)
    if key != key.strip():
        raise SendRefused(
            "idempotency_key", "The idempotency key starts or ends with a space; send it without."
        )
    return key


def check_user(value: Any) -> str | None:
    """Who asks (recorded with the message); None when not given."""
    if value is None or value == "":
        return None
    user = _string("user", value, "the user name", MAX_USER_CHARS)
    return _no_controls("user", user, "the user name", _ANY_CONTROL)


@dataclass(frozen=True)
class SendRequest:
    """A checked request to send one text: to a number (``to``) or, in the web API, to the
    profile the URL names."""

    text: str
    to: str | None = None
    short_code: str | None = None
    idempotency_key: str | None = None
    user: str | None = None

    @classmethod
    def from_mapping(
        cls,
        data: Any,
        *,
        recipient: bool = True,
        user: bool = False,
        ignore: frozenset[str] = frozenset(),
    ) -> SendRequest:
        """Check a request given as a JSON object. ``recipient``: it must name ``to``;
        ``user``: it may name who asks; ``ignore``: fields of the envelope (the control
        socket's ``op``). Unknown fields are refused, so a misspelt one is never dropped
        silently."""
        if not isinstance(data, Mapping):
            raise SendRefused(
                "request", f"A send request is a JSON object, not {_json_type(data)}."
            )
        known = {"text", "short_code", "idempotency_key"}
        if recipient:
            known.add("to")
        if user:
            known.add("user")
        for name in data:
            if name not in known and name not in ignore:
                shown = ascii(name)[1:-1][:40]  # whatever it holds, shown as plain ASCII
                raise SendRefused(
                    shown,
                    f"Unknown field {shown!r} (a send request has {', '.join(sorted(known))}).",
                )
        if "text" not in data:
            raise SendRefused("text", "The text of the message is required.")
        return cls(
            text=check_text(data["text"]),
            to=check_recipient(data.get("to")) if recipient else None,
            short_code=check_short_code(data.get("short_code")),
            idempotency_key=check_key(data.get("idempotency_key")),
            user=check_user(data.get("user")) if user else None,
        )
