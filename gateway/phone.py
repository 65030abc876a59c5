"""Phone numbers as people type them → E.164, with the ``phonenumbers`` library: the one rule
for the configuration, the web app, the CLI and inbound senders."""

from __future__ import annotations

import phonenumbers


class PhoneNumberError(ValueError):
    """A number that is not a valid phone number; the message says what was typed and why."""


def normalize(raw: str, region: str) -> str:
    """E.164 (``+15551234567``) for a number written with or without ``+``, spaces, dashes or
    brackets; numbers without a country code are read in ``region`` (ISO code, e.g. "US")."""
    text = (raw or "").strip()
    if not text:
        raise PhoneNumberError("phone: a number is required")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneNumberError(f"phone: {raw!r} is not a phone number ({exc})") from exc
    # Only the length is checked, not the numbering plan: the library's plan data ages, and a
    # gateway that refuses a newly opened number range is worse than one that tries to send.
    if not phonenumbers.is_possible_number(number):
        raise PhoneNumberError(f"phone: {raw!r} has the wrong number of digits for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _is_test_range(number: phonenumbers.PhoneNumber) -> bool:
    # North American numbers with 555 as area code or exchange are for fiction and tests.
    national = str(number.national_number)
    return (
        number.country_code == 1 and len(national) == 10 and "555" in (national[:3], national[3:6])
    )


def normalize_sender(raw: str, region: str) -> str:
    """An inbound sender: E.164 when it is a phone number, else as given (alphanumeric senders
    such as "BANK" or short codes such as "55123" stay what they are)."""
    try:
        return normalize(raw, region)
    except PhoneNumberError:
        return raw.strip()


def is_mobile_capable(e164: str) -> bool:
    """Whether a number can receive SMS as far as its numbering plan tells (mobile, or a plan
    that does not distinguish fixed from mobile)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    if _is_test_range(number):
        return True
    kind = phonenumbers.number_type(number)
    return kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        phonenumbers.PhoneNumberType.PAGER,
    )
