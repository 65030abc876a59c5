"""The real daemon over a simulated network that invents no phones (``auto_handsets: false``, as
the demo runs): a text to a number nobody has ends ``failed`` with a reason a user can act on,
and a handset texting a short code reaches the gateway on that short code's default modem, or
is refused when no modem serves it."""

from __future__ import annotations

import pytest

from gateway.sim import NoSuchNumber

from .harness import ALERTS, ALICE, NUM_A, NUM_C, SUPPORT, wait_until

NOBODY = "+15559870000"


@pytest.fixture
def gateway(start_gateway):
    gw = start_gateway(auto_handsets=False)
    gw.wait_up("a", "b", "c")
    return gw


def test_text_to_a_number_nobody_has_fails_with_the_reason(gateway):
    acc = gateway.services.outbox.submit("Anyone there?", to=NOBODY, short_code=SUPPORT)
    gateway.wait_status(acc.message_id, "failed")
    row = gateway.message(acc.message_id)
    assert row["error"] == (
        "the network could not deliver it: the number does not exist or is not in service; "
        "check the number (status report 0x43, not obtainable)"
    )
    [part] = gateway.parts(acc.message_id)
    assert part["status"] == "failed" and part["report_status"] == 0x43
    # The modem took it (a TP-MR), as a real network's would; no phone was invented for it.
    assert part["tp_mr"] is not None
    assert [h.number for h in gateway.net.handsets] == [ALICE, "+15551230002"]


def test_a_handset_texting_a_short_code_reaches_its_default_modem(gateway):
    gateway.net.handset(ALICE).send(SUPPORT, "Is the office open?")
    gateway.net.handset(ALICE).send(ALERTS, "HELP")

    def inbound():
        rows = gateway.store.db.q(
            "SELECT * FROM messages WHERE direction = 'in' AND phone = ? ORDER BY id", (ALICE,)
        )
        return rows if len(rows) == 2 else None

    rows = wait_until(gateway.sub, inbound, 8, "both texts to the short codes")
    # Two modems read them, in whichever order: by body.
    got = {r["body"]: (r["modem_id"], r["short_code"]) for r in rows}
    assert got == {"Is the office open?": ("a", SUPPORT), "HELP": ("c", ALERTS)}
    assert gateway.net.served_numbers(gateway.net.modem(NUM_A)) == [SUPPORT]
    assert gateway.net.served_numbers(gateway.net.modem(NUM_C)) == [ALERTS]


def test_a_handset_texting_a_short_code_nobody_serves_is_refused(gateway):
    with pytest.raises(NoSuchNumber, match="not delivered: no such number 55000"):
        gateway.net.handset(ALICE).send("55000", "JOIN")
    assert [h.number for h in gateway.net.handsets] == [ALICE, "+15551230002"]
