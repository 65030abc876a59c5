"""A gateway web app over a store filled by :mod:`.fill`, for the scale test and the benchmark:
its config names every short code and modem of the fill, so that each filter is accepted."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from gateway.config import parse_config
from gateway.services import build_services
from gateway.web.app import create_app

from .fill import MODEMS, SHORT_CODES

ADMIN = ("admin", "admin-password")


def config_text(data_dir: Path) -> str:
    """gateway.yaml for a store filled by :func:`.fill.fill`."""
    modems = "\n".join(
        f'  - {{id: {m}, imei: "3569380356{n:05d}", label: "Modem {m}"}}'
        for n, m in enumerate(MODEMS)
    )
    codes = "\n".join(
        f'  - {{code: "{c}", name: "Code {c}", modems: [{MODEMS[k % len(MODEMS)]}]}}'
        for k, c in enumerate(SHORT_CODES)
    )
    return f"data_dir: {data_dir}\ndefault_region: US\nmodems:\n{modems}\nshort_codes:\n{codes}\n"


class ScaleApp:
    """The store in ``data_dir`` (opened and migrated), the web app over it and a login."""

    def __init__(self, data_dir: Path) -> None:
        self.config = parse_config(config_text(data_dir))
        self.services = build_services(self.config, modems=False)
        self.store = self.services.store
        self.events = self.services.events
        self.inbound = self.services.inbound
        self.app: Flask = create_app(self.services, TESTING=True)
        if self.store.users.by_name(ADMIN[0]) is None:
            self.store.users.add(*ADMIN, role="admin")

    def client(self) -> FlaskClient:
        """A test client logged in as the admin."""
        client = self.app.test_client()
        html = client.get("/login").get_data(as_text=True)
        found = re.search(r'name="csrf[-_]token" (?:content|value)="([^"]+)"', html)
        if found is None:
            raise RuntimeError("the login page carries no CSRF token")
        resp = client.post(
            "/login",
            data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": found.group(1)},
        )
        if resp.status_code != 302:
            raise RuntimeError(f"login as {ADMIN[0]} failed: HTTP {resp.status_code}")
        return client

    def close(self) -> None:
        self.store.close()
