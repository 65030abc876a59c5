"""Fixtures for Flask test-client tests: an app over a real store, users of both roles, and a
helper that sends the CSRF token the way the pages do."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway.config import Config, parse_config
from gateway.messaging.dispatcher import Dispatcher
from gateway.messaging.events import EventBus
from gateway.messaging.inbound import Inbound
from gateway.messaging.outbound import Outbox
from gateway.services import Services, build_services
from gateway.store import Store
from gateway.web.app import create_app

CONFIG = """
data_dir: {data_dir}
default_region: US
modems:
  - {{id: a, imei: "490154203237518", label: "Modem A"}}
  - {{id: b, imei: "356938035643809"}}
short_codes:
  - {{code: "55123", name: Support, modems: [a], default_modem: a}}
  - {{code: "55999", name: Alerts, modems: [b]}}
agent:
  urgent_words: [urgent, emergency]
  canned_responses:
    - {{title: Thanks, text: "Thanks, we got your message."}}
"""

ADMIN = ("admin", "admin-password")
AGENT = ("agent", "agent-password")


class Web:
    """The app over the gateway's services (built without modems), and ways to act as each
    kind of user."""

    def __init__(self, tmp_path) -> None:
        config = parse_config(CONFIG.format(data_dir=tmp_path))
        self.services = build_services(config, modems=False)
        self.app = create_app(self.services, TESTING=True)
        self.store.users.add(*ADMIN, role="admin")
        self.store.users.add(*AGENT, role="agent")

    def use(self, config: Config | None = None, **changes: Any) -> Services:
        """Serve the app over services changed by a test: a new ``config`` rebuilds them over
        the same store and bus; ``changes`` replace fields (``manager``, ``simulator``). Call
        it before making clients: the app is made again."""
        services = self.services
        if config is not None:
            services = build_services(config, modems=False, store=self.store, events=self.events)
        self.services = dataclasses.replace(services, **changes)
        self.app = create_app(self.services, TESTING=True)
        return self.services

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def events(self) -> EventBus:
        return self.services.events

    @property
    def dispatcher(self) -> Dispatcher:
        return self.services.dispatcher

    @property
    def outbox(self) -> Outbox:
        return self.services.outbox

    @property
    def inbound(self) -> Inbound:
        return self.services.inbound

    def client(self, who: tuple[str, str] | None = ADMIN) -> FlaskClient:
        """A test client, logged in as ``who`` (None: anonymous)."""
        client = self.app.test_client()
        if who is not None:
            token = csrf_token(client, "/login")
            resp = client.post(
                "/login", data={"username": who[0], "password": who[1], "csrf_token": token}
            )
            assert resp.status_code == 302, resp.data
        return client


def csrf_token(client: FlaskClient, page: str = "/home") -> str:
    """The CSRF token a page carries (meta tag or hidden field)."""
    html = client.get(page).get_data(as_text=True)
    found = re.search(r'name="csrf[-_]token" (?:content|value)="([^"]+)"', html)
    assert found, f"no CSRF token on {page}"
    return found.group(1)


@pytest.fixture
def web(tmp_path) -> Iterator[Web]:
    w = Web(tmp_path)
    yield w
    w.store.close()
