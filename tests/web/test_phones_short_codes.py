"""The Phones page offers the short codes the simulated network routes to a modem, and texting
one reaches that modem; a number nobody serves is never offered, and a refusal of the network is
shown as the network's own words."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from gateway.config import SimHandsetConfig, SimulatorConfig
from gateway.services import Simulator
from gateway.sim import Network, SimControl

from .conftest import AGENT, Web, csrf_token

MARIA = "+15551230001"
SUPPORT_NUMBER = "+15550100001"  # modem a: short code 55123
ALERTS_NUMBER = "+15550100002"  # modem b: short code 55999


@pytest.fixture
def net(web: Web, tmp_path) -> Iterator[Network]:
    with Network(tmp_path / "sim", seed=3) as network:
        a = network.add_modem(imei="490154203237518", number=SUPPORT_NUMBER)
        network.add_modem(imei="356938035643809", number=ALERTS_NUMBER)
        network.serve_number("55123", a)
        network.add_handset(MARIA)
        config = dataclasses.replace(
            web.config,
            simulator=SimulatorConfig(handsets=(SimHandsetConfig(number=MARIA, name="Maria"),)),
        )
        web.use(config, simulator=Simulator(network, SimControl(network)))
        yield network


def test_short_code_is_offered_and_texting_it_reaches_its_modem(web: Web, net: Network) -> None:
    client = web.client(AGENT)
    html = client.get("/phones").get_data(as_text=True)
    assert '<option value="55123"' in html
    assert f"55123 Support (short code, to {SUPPORT_NUMBER})" in html
    assert '<option value="55999"' not in html  # no modem serves it on this network
    token = csrf_token(client, "/phones")
    resp = client.post(
        f"/phones/{MARIA}/send", data={"csrf_token": token, "to": "55123", "text": "JOIN"}
    )
    assert resp.status_code == 302
    [carried] = [t for t in net.traffic if t["kind"] == "text"]
    assert (carried["sender"], carried["to"]) == (MARIA, "55123")
    assert net.handsets == [net.handset(MARIA)]  # no phone invented for 55123
