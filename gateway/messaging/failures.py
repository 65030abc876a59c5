"""What a failed send means, and whose problem it is: the message's, a passing condition's, or
the modem's. This is the one place that decides it; the dispatcher only acts on the answer.

- ``Blame.MESSAGE``: this message can never go out (an unassigned number, a PDU the network
  refuses): it fails, with the reason in words.
- ``Blame.RETRY``: a passing condition of the network or the recipient (congestion, the
  recipient's memory full): the message is tried again later, with backoff, until it expires.
- ``Blame.MODEM``: the modem or its SIM cannot send now (PIN or PUK asked for, no SIM, SIM
  failure or busy, no network service, modem or memory failure, no answer): the message is not
  at fault. It goes back to the queue at once, without counting against its own backoff, for
  another modem of the pool; the failure counts against the modem, which leaves routing after a
  few in a row (see :mod:`.health`).

``+CMS ERROR`` codes are those of TS 27.005 section 3.2.5 (300-500, 512 and up for the
manufacturer) and the relay-layer causes of TS 24.011 annex E / TP-FCS of TS 23.040 9.2.3.22
(0-255) that modems pass through; ``+CME ERROR`` codes those of TS 27.007 section 9.2.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..modem.at import CmeError, CmsError, CommandError, CommandTimeout, PortGone, PromptTimeout


class Blame(enum.Enum):
    """Whose problem a failed send is (see the module docstring)."""

    MESSAGE = "message"
    RETRY = "retry"
    MODEM = "modem"


@dataclass(frozen=True)
class Failure:
    """``blame``: what to do about it; ``maybe_sent``: the network may have the part anyway."""

    blame: Blame
    maybe_sent: bool
    reason: str

    @property
    def temporary(self) -> bool:
        """Worth trying again (on this modem later, or on another)."""
        return self.blame is not Blame.MESSAGE


M, R, X = Blame.MESSAGE, Blame.RETRY, Blame.MODEM

# code: (blame, reason)
CMS_CODES: dict[int, tuple[Blame, str]] = {
    # Relay-layer causes from the network (TS 24.011 annex E): about this message or recipient,
    # or a passing state of the network, which another modem on the same network shares.
    1: (M, "the number is not assigned (unallocated number)"),
    8: (M, "the operator barred sending to this number"),
    10: (M, "sending is barred for this SIM"),
    21: (M, "the network rejected the message"),
    22: (R, "the recipient's memory is full"),
    27: (R, "the recipient is out of service"),
    28: (M, "the recipient is not known to the network"),
    29: (M, "the network rejected the request (facility rejected)"),
    30: (M, "the recipient is not a known subscriber"),
    38: (R, "the network is out of order"),
    41: (R, "temporary network failure"),
    42: (R, "the network is congested"),
    47: (R, "network resources unavailable"),
    # A SIM whose subscription has no SMS (a data-only SIM) can never send; another may.
    50: (X, "SMS is not part of this SIM's subscription"),
    69: (M, "the network does not implement this request"),
    81: (M, "invalid message reference"),
    95: (M, "the network found the message invalid"),
    96: (M, "the network found a mandatory field missing or invalid"),
    97: (M, "the network does not know this message type"),
    98: (R, "the message does not fit the network's state now"),
    99: (M, "the network does not know an information element"),
    111: (R, "protocol error"),
    127: (R, "interworking error"),
    # TS 27.005 3.2.5: the modem (ME) and its SIM.
    300: (X, "the modem failed (ME failure)"),
    301: (X, "the modem's SMS service is reserved"),
    302: (X, "the modem does not allow this now"),
    303: (X, "the modem does not support this"),
    304: (M, "the modem rejected the PDU as invalid"),
    305: (M, "the modem rejected a text-mode parameter"),
    310: (X, "no SIM card is inserted"),
    311: (X, "the SIM needs its PIN"),
    312: (X, "the modem needs its phone PIN"),
    313: (X, "the SIM failed"),
    314: (X, "the SIM is busy"),
    315: (X, "the SIM is the wrong one"),
    316: (X, "the SIM needs its PUK"),
    317: (X, "the SIM needs its PIN2"),
    318: (X, "the SIM needs its PUK2"),
    320: (X, "the modem's memory failed"),
    321: (X, "invalid memory index"),
    322: (X, "the modem's message memory is full"),
    330: (X, "the service centre (SMSC) address is unknown; set smsc in the modem's config"),
    331: (X, "no network service"),
    332: (X, "the network timed out"),
    340: (X, "the modem expected no acknowledgement"),
    500: (X, "unknown error from the modem"),
}

# TS 27.007 9.2: equipment errors; every one of them is about the modem, its SIM or its network
# registration, never about one message (a message's own problems come as +CMS ERROR).
CME_REASONS: dict[int, str] = {
    0: "the modem failed (phone failure)",
    1: "no connection to the modem",
    3: "the modem does not allow this now",
    4: "the modem does not support this",
    10: "no SIM card is inserted",
    11: "the SIM needs its PIN",
    12: "the SIM needs its PUK",
    13: "the SIM failed",
    14: "the SIM is busy",
    15: "the SIM is the wrong one",
    16: "the SIM refused a password",
    17: "the SIM needs its PIN2",
    18: "the SIM needs its PUK2",
    20: "the modem's memory is full",
    23: "the modem's memory failed",
    30: "no network service",
    31: "the network timed out",
    32: "the network allows emergency calls only",
    100: "unknown error from the modem",
}


def classify_cms(code: int | None) -> tuple[Blame, str]:
    """(blame, reason) of a ``+CMS ERROR`` code."""
    if code is None:
        return Blame.MODEM, "the modem reported an error without a code"
    if code in CMS_CODES:
        return CMS_CODES[code]
    if 128 <= code <= 255:
        return Blame.MESSAGE, f"the service centre refused the message (TP-FCS {code})"
    if code >= 512:
        return Blame.MODEM, f"manufacturer-specific modem error {code}"
    if code >= 300:
        return Blame.MODEM, f"modem error {code}"
    # Unknown relay-layer causes: TS 24.011 E.2 says to treat them as "unspecified", which a
    # network may well lift later.
    return Blame.RETRY, f"network error cause {code}"


def classify(exc: BaseException) -> Failure:
    """The meaning of an exception raised while a part was being sent."""
    if isinstance(exc, PromptTimeout):
        return Failure(X, False, "the modem did not ask for the message (no prompt)")
    if isinstance(exc, CommandTimeout):
        return Failure(X, True, "the modem did not answer in time; the part may have gone out")
    if isinstance(exc, PortGone):
        return Failure(X, True, f"the modem went away: {exc.why}")
    if isinstance(exc, CmsError):
        blame, reason = classify_cms(exc.code)
        return Failure(blame, False, f"{reason} (+CMS ERROR: {exc.code})")
    if isinstance(exc, CmeError):
        reason = CME_REASONS.get(exc.code or -1, "modem error")
        return Failure(X, False, f"{reason} (+CME ERROR: {exc.code} {exc.text})")
    if isinstance(exc, CommandError):
        # A bare ERROR to AT+CMGS: a SIM800 says it until "SMS Ready", others when the SIM or
        # the network is not there; nothing in it is about the message.
        return Failure(X, False, f"the modem answered {exc.final}")
    # An answer the driver could not read (line noise, a firmware's odd reply): the modem's.
    return Failure(X, True, f"unexpected error: {exc!r}")
