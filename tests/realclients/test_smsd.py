"""smstools 3.1.21 (Debian's `smstools`, the `smsd` daemon) against every simulated family: a
file in its outgoing spool reaches the handset (the inbox exact), and what a handset texts the
modem, plain and unicode with an emoji, lands in its incoming folder word for word."""

from __future__ import annotations

import pytest

from .simproc import FAMILIES
from .smsd_client import INCOMING, OUTGOING, SMSD, SmsdSession

pytestmark = pytest.mark.skipif(
    SMSD is None, reason="smsd is not installed (./run.sh test installs Debian's smstools)"
)


def played(sessions, family: str) -> SmsdSession:
    session = sessions["smsd"][family].result(timeout=600)
    assert session.error is None, session.error
    return session


@pytest.mark.parametrize("family", FAMILIES)
def test_smsd_sends_from_its_outgoing_spool(sessions, sim_process, family):
    session = played(sessions, family)
    assert (session.sent_files, session.failed_files) == (["to-handset"], []), session.log_tail()
    number = sim_process.modem("smsd", family).number
    got = [(m["sender"], m["text"], m["parts"]) for m in session.inbox]
    assert got == [(number, OUTGOING.format(family=family), 1)]


@pytest.mark.parametrize("family", FAMILIES)
def test_smsd_receives_into_its_incoming_folder(sessions, sim_process, family):
    session = played(sessions, family)
    handset = sim_process.modem("smsd", family).handset
    got = [(m.headers.get("From"), m.text) for m in session.incoming]
    want = sorted((handset.lstrip("+"), t.format(family=family)) for t in INCOMING)
    assert sorted(got) == want, session.log_tail()
