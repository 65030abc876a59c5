"""What a failed send means: try again later, or give up with a reason a person understands.

``+CMS ERROR`` codes are those of TS 27.005 section 3.2.5 (300-500) and the relay-layer causes
of TS 24.011 annex E / TP-FCS of TS 23.040 9.2.3.22 (0-255) that modems pass through.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..modem.at import CmeError, CmsError, CommandError, CommandTimeout, PortGone, PromptTimeout


@dataclass(frozen=True)
class Failure:
    """``temporary``: worth retrying; ``maybe_sent``: the network may have the part anyway."""

    temporary: bool
    maybe_sent: bool
    reason: str


# code: (temporary, reason)
CMS_CODES: dict[int, tuple[bool, str]] = {
    1: (False, "the number is not assigned (unallocated number)"),
    8: (False, "the operator barred sending to this number"),
    10: (False, "sending is barred for this SIM"),
    21: (False, "the network rejected the message"),
    22: (True, "the recipient's memory is full"),
    27: (True, "the recipient is out of service"),
    28: (False, "the recipient is not known to the network"),
    29: (False, "the network rejected the request (facility rejected)"),
    30: (False, "the recipient is not a known subscriber"),
    38: (True, "the network is out of order"),
    41: (True, "temporary network failure"),
    42: (True, "the network is congested"),
    47: (True, "network resources unavailable"),
    50: (False, "SMS is not part of this SIM's subscription"),
    69: (False, "the network does not implement this request"),
    81: (False, "invalid message reference"),
    95: (False, "the network found the message invalid"),
    96: (False, "the network found a mandatory field missing or invalid"),
    97: (False, "the network does not know this message type"),
    98: (True, "the message does not fit the network's state now"),
    99: (False, "the network does not know an information element"),
    111: (True, "protocol error"),
    127: (True, "interworking error"),
    300: (True, "the modem failed"),
    301: (False, "the SIM's SMS service is reserved"),
    302: (True, "the modem does not allow this now"),
    303: (False, "the modem does not support this"),
    304: (False, "the modem rejected the PDU as invalid"),
    305: (False, "the modem rejected a text-mode parameter"),
    310: (False, "no SIM card is inserted"),
    311: (False, "the SIM needs its PIN"),
    312: (False, "the modem needs its phone PIN"),
    313: (True, "the SIM failed"),
    314: (True, "the SIM is busy"),
    315: (False, "the SIM is the wrong one"),
    316: (False, "the SIM needs its PUK"),
    320: (True, "the modem's memory failed"),
    322: (True, "the modem's message memory is full"),
    330: (False, "the service centre (SMSC) address is unknown; set smsc in the modem's config"),
    331: (True, "no network service"),
    332: (True, "the network timed out"),
    340: (True, "the modem expected no acknowledgement"),
    500: (True, "unknown error from the modem"),
}


def classify_cms(code: int | None) -> tuple[bool, str]:
    """(temporary, reason) of a ``+CMS ERROR`` code; unknown codes count as temporary."""
    if code is None:
        return True, "the modem reported an error without a code"
    if code in CMS_CODES:
        return CMS_CODES[code]
    if 128 <= code <= 255:
        return False, f"the service centre refused the message (TP-FCS {code})"
    if code >= 512:
        return True, f"manufacturer-specific modem error {code}"
    return True, f"error code {code}"


def classify(exc: BaseException) -> Failure:
    """The meaning of an exception raised while a part was being sent."""
    if isinstance(exc, PromptTimeout):
        return Failure(True, False, "the modem did not ask for the message (no prompt)")
    if isinstance(exc, CommandTimeout):
        return Failure(True, True, "the modem did not answer in time; the part may have gone out")
    if isinstance(exc, PortGone):
        return Failure(True, True, f"the modem went away: {exc.why}")
    if isinstance(exc, CmsError):
        temporary, reason = classify_cms(exc.code)
        return Failure(temporary, False, f"{reason} (+CMS ERROR: {exc.code})")
    if isinstance(exc, CmeError):
        if exc.code in (10, 11, 12, 13, 15, 16, 18):  # SIM missing, PIN/PUK, SIM failure
            return Failure(False, False, f"SIM problem (+CME ERROR: {exc.code} {exc.text})")
        return Failure(True, False, f"modem error (+CME ERROR: {exc.code} {exc.text})")
    if isinstance(exc, CommandError):
        return Failure(True, False, f"the modem answered {exc.final}")
    return Failure(True, True, f"unexpected error: {exc!r}")
