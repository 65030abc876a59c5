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


# Kinds of number whose plan says plainly that they take no SMS. Anything else, UNKNOWN included,
# is tried: the plan data ages, and a newly opened mobile range looks unknown to it; a gateway
# that refuses a real mobile is worse than one whose send fails.
_NO_SMS = (
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.SHARED_COST,
    phonenumbers.PhoneNumberType.VOICEMAIL,
)


def is_mobile_capable(e164: str) -> bool:
    """Whether a number may receive SMS as far as its numbering plan tells: False for what is
    not a phone number ("BANK") and for numbers the plan calls fixed line, toll free, premium,
    shared cost or voicemail; True otherwise (mobile, fixed-or-mobile, pager, or a range the
    plan does not know yet)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    if _is_test_range(number):
        return True
    return phonenumbers.number_type(number) not in _NO_SMS
