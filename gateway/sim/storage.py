"""Message storage of a simulated modem: SIM ("SM") and phone ("ME") memories with capacities.

Slots hold raw PDUs exactly as the modem would show them in ``+CMGL`` / ``+CMGR``. ``MT`` is the
union of SM then ME, as 3GPP TS 27.005 defines it. The storage is not thread-safe by itself; the
modem guards it with its lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# <stat> values of TS 27.005 3.1 in PDU mode, and their text-mode names.
REC_UNREAD, REC_READ, STO_UNSENT, STO_SENT, ALL = 0, 1, 2, 3, 4
STAT_NAMES = {
    REC_UNREAD: "REC UNREAD",
    REC_READ: "REC READ",
    STO_UNSENT: "STO UNSENT",
    STO_SENT: "STO SENT",
    ALL: "ALL",
}


@dataclass
class StoredPdu:
    """One occupied slot: the PDU (hex, with its SMSC field), its <stat> and what it is."""

    pdu: str
    stat: int
    kind: str  # "deliver" | "status-report" | "submit"

    @property
    def tpdu_length(self) -> int:
        """Octets after the SMSC field: the <length> shown by +CMGL / +CMGR / +CMT."""
        octets = len(self.pdu) // 2
        smsc_len = int(self.pdu[:2], 16) if self.pdu else 0
        return octets - 1 - smsc_len


class Memory:
    """One memory ("SM" or "ME"): numbered slots from ``first_index`` up to its capacity."""

    def __init__(self, name: str, capacity: int, first_index: int) -> None:
        self.name = name
        self.capacity = capacity
        self.first_index = first_index
        self.slots: dict[int, StoredPdu] = {}

    @property
    def used(self) -> int:
        return len(self.slots)

    def indexes(self) -> range:
        return range(self.first_index, self.first_index + self.capacity)

    def add(self, message: StoredPdu) -> int | None:
        """Store in the lowest free slot and return its index, or None when the memory is full."""
        for index in self.indexes():
            if index not in self.slots:
                self.slots[index] = message
                return index
        return None


class View:
    """What a <mem> name designates: one memory, or MT (SM then ME, indexes continued)."""

    def __init__(self, name: str, parts: list[Memory]) -> None:
        self.name = name
        self._parts = parts

    @property
    def used(self) -> int:
        return sum(m.used for m in self._parts)

    @property
    def capacity(self) -> int:
        return sum(m.capacity for m in self._parts)

    def _locate(self, index: int) -> tuple[Memory, int] | None:
        offset = 0
        for memory in self._parts:
            local = index - offset
            if local in memory.indexes():
                return memory, local
            offset += memory.capacity
        return None

    def valid(self, index: int) -> bool:
        return self._locate(index) is not None

    def get(self, index: int) -> StoredPdu | None:
        found = self._locate(index)
        return found[0].slots.get(found[1]) if found else None

    def delete(self, index: int) -> bool:
        found = self._locate(index)
        return bool(found and found[0].slots.pop(found[1], None))

    def add(self, message: StoredPdu) -> int | None:
        offset = 0
        for memory in self._parts:
            local = memory.add(message)
            if local is not None:
                return local + offset
            offset += memory.capacity
        return None

    def items(self) -> Iterator[tuple[int, StoredPdu]]:
        offset = 0
        for memory in self._parts:
            for local in sorted(memory.slots):
                yield local + offset, memory.slots[local]
            offset += memory.capacity


class Storage:
    """The memories of one modem, addressed by the names AT+CPMS accepts."""

    NAMES = ("SM", "ME", "MT")

    def __init__(self, capacity: int, first_index: int) -> None:
        self.sm = Memory("SM", capacity, first_index)
        self.me = Memory("ME", capacity, first_index)
        self.first_index = first_index

    def view(self, name: str) -> View:
        """The view for a <mem> name; KeyError for a memory this modem does not have."""
        if name == "SM":
            return View("SM", [self.sm])
        if name == "ME":
            return View("ME", [self.me])
        if name == "MT":
            return View("MT", [self.sm, self.me])
        raise KeyError(name)

    def snapshot(self) -> list[dict]:
        """Every stored message as plain data, memory by memory (for tests and the control API)."""
        out = []
        for memory in (self.sm, self.me):
            for index in sorted(memory.slots):
                msg = memory.slots[index]
                out.append(
                    {
                        "memory": memory.name,
                        "index": index,
                        "stat": msg.stat,
                        "kind": msg.kind,
                        "pdu": msg.pdu,
                    }
                )
        return out
