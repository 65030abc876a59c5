"""Errors of the simulator: what a test, the CLI or the control API can catch and show."""

from __future__ import annotations


class SimError(Exception):
    """Base class of every error the simulator raises on purpose."""


class UnknownModem(SimError, LookupError):
    """No simulated modem has this IMEI (or number)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no simulated modem with IMEI or number {key!r}")


class UnknownHandset(SimError, LookupError):
    """No virtual handset has this phone number."""

    def __init__(self, number: str) -> None:
        self.number = number
        super().__init__(f"no virtual handset with number {number!r}")


class NoSuchNumber(SimError, LookupError):
    """A handset texted a number no modem or handset on the network has or serves: the network
    refuses it (the phone shows "not sent"), it is not carried anywhere."""

    def __init__(self, number: str) -> None:
        self.number = number
        super().__init__(f"not delivered: no such number {number}")


class FaultError(SimError, ValueError):
    """A fault kind or one of its parameters is not valid."""


class DuplicateNumber(SimError, ValueError):
    """A phone number (or IMEI) is already taken by another modem or handset."""


class PortError(SimError, OSError):
    """A pseudo-terminal or serial device could not be created, opened or linked."""
