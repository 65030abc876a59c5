"""Gammu 1.42 (Debian's `gammu`), a client nobody here wrote, against every simulated family:
identify, networkinfo, monitor (one pass, which shows the signal), sendsms (single, long,
unicode with an emoji) with the handset's inbox exact, getallsms and getussd.

A failure here is a simulator bug when the same call works against the real modem: fix the
simulator, not the test. Each step's Gammu log (`textall`) is shown with its failure.
"""

from __future__ import annotations

import pytest

from .gammu_client import GAMMU, INCOMING, SINGLE, UNICODE, GammuSession, Step, long_text
from .simproc import FAMILIES

pytestmark = pytest.mark.skipif(
    GAMMU is None, reason="gammu is not installed (./run.sh test installs Debian's gammu)"
)


def played(sessions, client: str, family: str) -> GammuSession:
    session = sessions[client][family].result(timeout=600)
    assert session.error is None, session.error
    return session


SMS_STEPS = {"sendsms_single", "sendsms_long", "sendsms_unicode", "getussd"}


def step(sessions, family: str, name: str) -> Step:
    client = "gammu-sms" if name in SMS_STEPS else "gammu-info"
    found = played(sessions, client, family).steps.get(name)
    assert found is not None, f"{family}: step {name} did not run"
    assert found.returncode == 0, found.explain()
    return found


def field(output: str, label: str) -> str:
    """The value of ``Label : value`` in Gammu's output."""
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == label:
            return value.strip()
    raise AssertionError(f"no {label!r} in:\n{output}")


@pytest.mark.parametrize("family", FAMILIES)
def test_identify(sessions, sim_process, family):
    s = step(sessions, family, "identify")
    assert field(s.output, "IMEI") == sim_process.modem("gammu-info", family).imei, s.explain()
    assert field(s.output, "SIM IMSI").startswith("00101"), s.explain()


@pytest.mark.parametrize("family", FAMILIES)
def test_networkinfo(sessions, family):
    s = step(sessions, family, "networkinfo")
    assert field(s.output, "Network state") == "home network", s.explain()
    assert field(s.output, "Network").startswith("001 01"), s.explain()  # AT+COPS=3,2
    assert field(s.output, "GPRS") == "attached", s.explain()  # AT+CGATT?


@pytest.mark.parametrize("family", FAMILIES)
def test_monitor_shows_the_signal(sessions, family):
    s = step(sessions, family, "monitor")
    assert field(s.output, "Signal strength") == "-73 dBm", s.explain()  # AT+CSQ: 20
    assert field(s.output, "Network level") == "60 percent", s.explain()


@pytest.mark.parametrize("family", FAMILIES)
def test_sendsms_reaches_the_handset_exactly(sessions, sim_process, family):
    for name in ("sendsms_single", "sendsms_long", "sendsms_unicode"):
        step(sessions, family, name)
    number = sim_process.modem("gammu-sms", family).number
    inbox = played(sessions, "gammu-sms", family).inbox
    got = [(m["sender"], m["text"], m["parts"]) for m in inbox]
    assert got == [
        (number, SINGLE.format(family=family), 1),
        (number, long_text(family), 3),
        (number, UNICODE.format(family=family), 1),
    ]


@pytest.mark.parametrize("family", FAMILIES)
def test_getallsms_lists_the_stored_text(sessions, sim_process, family):
    s = step(sessions, family, "getallsms")
    assert INCOMING.format(family=family) in s.output, s.explain()
    assert sim_process.modem("gammu-info", family).handset in s.output, s.explain()


@pytest.mark.parametrize("family", FAMILIES)
def test_getussd_answers_in_the_chosen_character_set(sessions, family):
    s = step(sessions, family, "getussd")
    assert field(s.output, "Status") == "No action needed", s.explain()
    assert field(s.output, "Service reply").startswith('"Your balance is '), s.explain()
