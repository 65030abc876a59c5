"""The Phones page of the demo, over a real simulated network: 404 without a simulator, texting
the gateway as a handset, the handsets' inboxes (escaped, newest first) and their JSON."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest

from gateway.config import SimHandsetConfig, SimulatorConfig
from gateway.modem.sim import Network, SimControl
from gateway.services import Simulator

from .conftest import AGENT, Web, csrf_token

MARIA = "+15551230001"
JAMES = "+15551230002"
SUPPORT_NUMBER = "+15550100001"  # modem a: short code 55123
ALERTS_NUMBER = "+15550100002"  # modem b: short code 55999
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def net(web: Web, tmp_path) -> Iterator[Network]:
    """A simulated network with the fixture's two modems and two handsets, on the web app."""
    with Network(tmp_path / "sim", seed=3) as network:
        network.add_modem(imei="490154203237518", number=SUPPORT_NUMBER)
        network.add_modem(imei="356938035643809", number=ALERTS_NUMBER)
        network.add_handset(MARIA)
        network.add_handset(JAMES)
        config = dataclasses.replace(
            web.config,
            simulator=SimulatorConfig(
                handsets=(SimHandsetConfig(number=MARIA, name="Maria <Garcia>"),),
            ),
        )
        web.use(config, simulator=Simulator(network, SimControl(network)))
        yield network


def _texts(network: Network) -> list[dict]:
    return [t for t in network.traffic if t["kind"] == "text"]


def test_404_without_a_simulator(web: Web) -> None:
    client = web.client()
    assert client.get("/phones").status_code == 404
    token = csrf_token(client, "/home")
    resp = client.post(
        f"/phones/{MARIA}/send", data={"csrf_token": token, "to": SUPPORT_NUMBER, "text": "hi"}
    )
    assert resp.status_code == 404
    assert client.get(f"/phones/{MARIA}/inbox.json").status_code == 404
    assert "/phones" not in client.get("/home").get_data(as_text=True)


def test_routes_need_a_login(web: Web, net: Network) -> None:
    anon = web.client(None)
    for url in ("/phones", f"/phones/{MARIA}/inbox.json"):
        resp = anon.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], url
    token = csrf_token(anon, "/login")
    resp = anon.post(
        f"/phones/{MARIA}/send", data={"csrf_token": token, "to": SUPPORT_NUMBER, "text": "hi"}
    )
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert _texts(net) == []


def test_page_lists_handsets_with_names_and_gateway_numbers(web: Web, net: Network) -> None:
    html = web.client(AGENT).get("/phones").get_data(as_text=True)
    assert "Maria &lt;Garcia&gt;" in html and "<Garcia>" not in html
    assert MARIA in html and JAMES in html
    assert f'<option value="{SUPPORT_NUMBER}"' in html and "55123 Support" in html
    assert f'<option value="{ALERTS_NUMBER}"' in html and "55999 Alerts" in html
    assert html.index("55123 Support") < html.index("55999 Alerts")
    assert "js/phones.js" in html
    assert 'href="/phones"' in html  # in the left pane


def test_text_the_gateway_as_a_handset(web: Web, net: Network) -> None:
    client = web.client(AGENT)
    token = csrf_token(client, "/phones")
    resp = client.post(
        f"/phones/{MARIA}/send",
        data={"csrf_token": token, "to": SUPPORT_NUMBER, "text": "Is school open today?"},
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("#handset-15551230001")
    assert [(t["sender"], t["to"], t["text"]) for t in _texts(net)] == [
        (MARIA, SUPPORT_NUMBER, "Is school open today?")
    ]
    # The network delivers to the modem on the modem's own thread: wait until it is stored,
    # ready for the gateway to read.
    modem = net.modem(SUPPORT_NUMBER)
    deadline = time.monotonic() + 5
    while not modem.stored():
        assert time.monotonic() < deadline, "the text never reached the modem's storage"
        time.sleep(0.01)
    assert len(modem.stored()) == 1
    html = client.get("/phones").get_data(as_text=True)
    assert f"{MARIA} texted {SUPPORT_NUMBER} (1 part)." in html


@pytest.mark.parametrize(
    ("to", "text", "message"),
    [
        ("", "hello", "to: choose one of the gateway&#39;s numbers"),
        ("+15559999999", "hello", "to: choose one of the gateway&#39;s numbers"),
        (JAMES, "hello", "to: choose one of the gateway&#39;s numbers"),
        (SUPPORT_NUMBER, "   ", "text: write something to send"),
        (SUPPORT_NUMBER, "x" * 1601, "text: at most 1600 characters (this has 1601)"),
    ],
)
def test_bad_input_gets_a_message_and_sends_nothing(
    web: Web, net: Network, to: str, text: str, message: str
) -> None:
    client = web.client()
    token = csrf_token(client, "/phones")
    resp = client.post(f"/phones/{MARIA}/send", data={"csrf_token": token, "to": to, "text": text})
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)
    assert _texts(net) == []
    assert len(net.handsets) == 2  # no handset invented for a wrong number


def test_typed_text_is_kept_and_escaped_after_an_error(web: Web, net: Network) -> None:
    client = web.client()
    token = csrf_token(client, "/phones")
    resp = client.post(
        f"/phones/{MARIA}/send", data={"csrf_token": token, "to": "nowhere", "text": HOSTILE}
    )
    html = resp.get_data(as_text=True)
    assert (
        resp.status_code == 400 and "&lt;script&gt;alert(" in html and "<script>alert" not in html
    )


def test_unknown_handset(web: Web, net: Network) -> None:
    client = web.client()
    token = csrf_token(client, "/phones")
    resp = client.post(
        "/phones/+15550000000/send", data={"csrf_token": token, "to": SUPPORT_NUMBER, "text": "x"}
    )
    assert resp.status_code == 404 and b"no simulated handset +15550000000" in resp.data
    resp = client.get("/phones/+15550000000/inbox.json")
    assert resp.status_code == 404 and "no simulated handset" in resp.get_json()["error"]
    assert _texts(net) == [] and len(net.handsets) == 2


def test_csrf_is_enforced(web: Web, net: Network) -> None:
    client = web.client()
    resp = client.post(f"/phones/{MARIA}/send", data={"to": SUPPORT_NUMBER, "text": "hi"})
    assert resp.status_code == 400
    assert _texts(net) == []


def test_inbox_newest_first_escaped_and_as_json(web: Web, net: Network) -> None:
    james = net.handset(JAMES)
    james.send(to=MARIA, text="first")
    james.send(to=MARIA, text=HOSTILE)
    client = web.client(AGENT)
    html = client.get("/phones").get_data(as_text=True)
    assert "&lt;script&gt;alert(" in html and "<script>alert" not in html
    assert "<img src=x" not in html
    maria_card = html[
        html.index('id="handset-15551230001"') : html.index('id="handset-15551230002"')
    ]
    assert maria_card.index("&lt;script&gt;") < maria_card.index("first")
    assert "(2)" in maria_card
    data = client.get(f"/phones/{MARIA}/inbox.json").get_json()
    assert data["number"] == MARIA
    assert [m["text"] for m in data["messages"]] == [HOSTILE, "first"]
    assert data["messages"][0]["sender"] == JAMES
    assert client.get(f"/phones/{JAMES}/inbox.json").get_json()["messages"] == []
