"""A virtual handset: a phone number that texts modems and keeps what it receives, reassembled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.modem.pdu import Deliver, Submit
    from gateway.sim.network import Network


ReportDelay = float | tuple[float, float]


def check_report_delay(delay: ReportDelay) -> tuple[float, float]:
    """A status report delay as (shortest, longest) seconds; ValueError naming what is wrong."""
    low, high = (delay, delay) if isinstance(delay, int | float) else delay
    if not 0 <= low <= high:
        raise ValueError(
            f"status report delay must be seconds >= 0 or a (shortest, longest) pair, not {delay!r}"
        )
    return float(low), float(high)


@dataclass(frozen=True)
class InboxMessage:
    """A whole message as the handset's owner reads it."""

    sender: str
    text: str
    time: datetime
    parts: int = 1
    data: bytes | None = None  # the payload of an 8-bit message

    def to_json(self) -> dict[str, Any]:
        return {
            "sender": self.sender,
            "text": self.text,
            "time": self.time.isoformat(),
            "parts": self.parts,
            "data": self.data.hex().upper() if self.data is not None else None,
        }


class Handset:
    """One phone on the simulated network; create it with :meth:`Network.add_handset`."""

    def __init__(self, network: Network, number: str) -> None:
        self.network = network
        self.number = number
        self._cond = threading.Condition()
        self._inbox: list[InboxMessage] = []
        self._returned = 0  # messages already handed out by wait_for_message
        self._seen: set[int] = set()
        # (sender, reference, total) -> {seq: (text, data)}
        self._partial: dict[tuple[str, int, int], dict[int, tuple[str, bytes | None]]] = {}
        self._reachable = True
        self._held: list[Callable[[], None]] = []
        # (shortest, longest) seconds before the status report of a message delivered here
        # reaches its sender; None: the network's delay.
        self.report_delay: tuple[float, float] | None = None

    def set_report_delay(self, delay: ReportDelay | None) -> None:
        """Seconds (or a (shortest, longest) range) from a delivery to this phone until its
        status report reaches the sender; None goes back to the network's delay."""
        self.report_delay = None if delay is None else check_report_delay(delay)

    def send(self, to: str, text: str, *, reorder: bool | None = None) -> list[str]:
        """Text ``to`` (a modem or another handset). Returns the SMS-DELIVER PDUs in the order
        the network hands them over (a long text may arrive out of order; ``reorder`` forces it
        one way or the other, None lets the seeded network decide). NoSuchNumber when no modem
        or handset has or serves ``to``: the network refuses it, as a phone shows "not sent"."""
        return self.network.send_from_handset(self.number, to, text, reorder=reorder)

    @property
    def inbox(self) -> list[InboxMessage]:
        """Every complete message received so far, oldest first (a copy)."""
        with self._cond:
            return list(self._inbox)

    def wait_for_message(
        self, timeout: float = 5.0, predicate: Callable[[InboxMessage], bool] | None = None
    ) -> InboxMessage:
        """The next message (matching ``predicate``) not returned by an earlier call; waits for
        it up to ``timeout`` seconds, then raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, msg in enumerate(self._inbox):
                    if i in self._seen:
                        continue
                    if predicate is None or predicate(msg):
                        self._seen.add(i)
                        return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"handset {self.number}: no matching message within {timeout}s "
                        f"({len(self._inbox)} in the inbox)"
                    )
                self._cond.wait(remaining)

    def clear_inbox(self) -> None:
        with self._cond:
            self._inbox.clear()
            self._seen.clear()

    def set_reachable(self, reachable: bool) -> None:
        """Switch the phone off (messages wait in the network) or on (they arrive now)."""
        with self._cond:
            self._reachable = reachable
            held, self._held = (self._held, []) if reachable else ([], self._held)
        for deliver in held:
            deliver()

    @property
    def reachable(self) -> bool:
        return self._reachable

    def summary(self) -> dict[str, Any]:
        with self._cond:
            return {
                "number": self.number,
                "received": len(self._inbox),
                "reachable": self._reachable,
                "report_delay": list(self.report_delay) if self.report_delay else None,
            }

    # Called by the network.

    def receive_part(
        self,
        sender: str,
        part: Deliver | Submit,
        when: datetime,
        on_delivered: Callable[[], None] | None = None,
    ) -> None:
        """One part of a message from ``sender``: kept until its siblings arrive."""

        def deliver() -> None:
            with self._cond:
                concat = part.concat
                if concat is None or concat.total <= 1:
                    self._add(InboxMessage(sender, part.text, when, 1, part.data))
                else:
                    key = (sender, concat.reference, concat.total)
                    parts = self._partial.setdefault(key, {})
                    parts[concat.seq] = (part.text, part.data)
                    if len(parts) == concat.total:
                        del self._partial[key]
                        ordered = [parts[i] for i in sorted(parts)]
                        text = "".join(t for t, _ in ordered)
                        datas = [d for _, d in ordered if d is not None]
                        data = b"".join(datas) if datas else None
                        self._add(InboxMessage(sender, text, when, concat.total, data))
            if on_delivered is not None:
                on_delivered()

        self._when_reachable(deliver)

    def receive_text(
        self, sender: str, text: str, when: datetime, on_delivered: Callable[[], None] | None = None
    ) -> None:
        """A whole message from another handset (or a text-mode send)."""

        def deliver() -> None:
            with self._cond:
                self._add(InboxMessage(sender, text, when))
            if on_delivered is not None:
                on_delivered()

        self._when_reachable(deliver)

    def _when_reachable(self, deliver: Callable[[], None]) -> None:
        with self._cond:
            if not self._reachable:
                self._held.append(deliver)
                return
        deliver()

    def _add(self, message: InboxMessage) -> None:
        self._inbox.append(message)
        self._cond.notify_all()
