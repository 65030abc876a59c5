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
        raise PhoneNumberError("phone: A phone number is required.")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        # In our words: the library's ("(1) The string supplied did not seem to be a phone
        # number.") is for programmers.
        raise PhoneNumberError(f"phone: {_parse_failure(text, region, exc)}") from exc
    # Only the length is checked, not the numbering plan: the library's plan data ages, and a
    # gateway that refuses a newly opened number range is worse than one that tries to send.
    if not phonenumbers.is_possible_number(number):
        raise PhoneNumberError(
            f"phone: The number {text!r} has the wrong number of digits for its country."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse_failure(text: str, region: str, exc: phonenumbers.NumberParseException) -> str:
    """Why ``text`` could not be read as a phone number, as a sentence a user can act on."""
    kind = phonenumbers.NumberParseException
    how = f"write it with + and the country code, or as a number of {region}"
    if exc.error_type == kind.INVALID_COUNTRY_CODE:
        return f"The number {text!r} has no country code this gateway knows: {how}."
    if exc.error_type in (kind.TOO_SHORT_NSN, kind.TOO_SHORT_AFTER_IDD):
        return f"The number {text!r} is too short to be a phone number."
    if exc.error_type == kind.TOO_LONG:
        return f"The number {text!r} is too long to be a phone number."
    return f"This is not a phone number: {text!r}; {how}."


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
