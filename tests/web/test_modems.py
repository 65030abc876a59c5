"""The Modems page: identity, state, signal, storage, queue and counters; the admins' sweep and
rescan buttons; what it shows when the daemon's modem manager is not running."""

from __future__ import annotations

from gateway.modem.device import Identity, MemoryUsage, StorageUsage
from gateway.modem.manager import ModemStatus
from gateway.modem.urc import Registration, signal_from_rssi

from .conftest import AGENT, Web, csrf_token


class FakeManager:
    """What the page uses of a ModemManager: statuses, and the two requests it records."""

    def __init__(self, statuses: list[ModemStatus]) -> None:
        self._statuses = statuses
        self.sweeps: list[str] = []
        self.rescans = 0

    def statuses(self) -> list[ModemStatus]:
        return list(self._statuses)

    def request_sweep(self, modem_id: str) -> None:
        self.sweeps.append(modem_id)

    def rescan(self) -> None:
        self.rescans += 1


def _manager(web: Web) -> FakeManager:
    up = ModemStatus(
        "a",
        label="Modem A",
        state="up",
        port="/dev/serial/by-id/usb-Huawei-if00",
        identity=Identity(
            family="huawei",
            manufacturer="huawei",
            model="E3372",
            firmware="22.323",
            imei="490154203237518",
            imsi="001010123456789",
            iccid="8901260000000000001",
            number="+15550100001",
        ),
        signal=signal_from_rssi(20),  # -73 dBm: 4 bars
        registration=Registration("CS", 1),
        operator="SimNet <b>",
        storage=StorageUsage(MemoryUsage("SM", 30, 30), None, MemoryUsage("SM", 30, 30)),
        last_error="+CMS ERROR: 500 <script>x</script>",
    )
    down = ModemStatus("b", state="down", last_error="port gone")
    found = ModemStatus("/dev/ttyUSB9", state="unconfigured", port="/dev/ttyUSB9")
    manager = FakeManager([up, down, found])
    web.use(manager=manager)
    return manager


def test_routes_need_a_login(web: Web) -> None:
    manager = _manager(web)
    anon = web.client(None)
    resp = anon.get("/modems")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    for url in ("/modems/a/sweep", "/modems/rescan"):
        # A refused request clears the session, and with it the token: take a fresh one.
        resp = anon.post(url, data={"csrf_token": csrf_token(anon, "/login")})
        assert resp.status_code == 302 and "/login" in resp.headers["Location"], url
    assert manager.sweeps == [] and manager.rescans == 0


def test_without_a_manager_shows_configured_modems_as_unknown(web: Web) -> None:
    web.store.modems.seen("a", imei="490154203237518", number="+15550100001", model="E3372")
    web.store.modems.count("a", sent=5, failed=1)
    html = web.client().get("/modems").get_data(as_text=True)
    assert "modem manager is not running" in html
    assert "Modem A" in html and 'data-modem-id="b"' in html
    assert html.count(">unknown</span>") == 2
    assert "+15550100001" in html and "E3372" in html  # remembered by the store
    assert "55123 Support" in html and "55999 Alerts" in html
    assert "<dd>5</dd>" in html and "<dd>1</dd>" in html  # sent and failed counters
    assert "Sweep storage now" not in html and "Rescan ports" not in html


def test_without_a_manager_a_sweep_does_nothing_and_says_so(web: Web) -> None:
    client = web.client()
    token = csrf_token(client, "/modems")
    resp = client.post("/modems/a/sweep", data={"csrf_token": token}, follow_redirects=True)
    assert resp.status_code == 200 and b"modem manager is not running here" in resp.data
    assert [r["action"] for r in web.store.audit.recent()].count("modem.sweep") == 0


def test_live_status_with_escaping(web: Web) -> None:
    _manager(web)
    out = web.outbox.submit("queued on a", to="+15551230002", short_code="55123")
    web.store.messages.claim(out.message_id, "a")
    html = web.client(AGENT).get("/modems").get_data(as_text=True)
    assert ">up</span>" in html and ">down</span>" in html and ">unconfigured</span>" in html
    assert 'aria-label="signal 4 of 4 bars"' in html and "-73 dBm, 4 of 4 bars" in html
    assert "registered, home network" in html
    assert "SimNet &lt;b&gt;" in html
    assert "30 of 30 used (SM)" in html and ">full</span>" in html
    assert "1 waiting or being sent" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
    assert "490154203237518" in html and "8901260000000000001" in html and "22.323" in html
    assert "/dev/serial/by-id/usb-Huawei-if00" in html
    assert "js/modems.js" in html
    # Agents see the page without the admins' buttons.
    assert "Sweep storage now" not in html and "Rescan ports" not in html


def test_admin_sweeps_and_rescans(web: Web) -> None:
    manager = _manager(web)
    client = web.client()
    html = client.get("/modems").get_data(as_text=True)
    assert html.count("Sweep storage now") == 2  # the configured modems, not the stray port
    token = csrf_token(client, "/modems")
    resp = client.post("/modems/a/sweep", data={"csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/modems")
    resp = client.post("/modems/rescan", data={"csrf_token": token})
    assert resp.status_code == 302
    assert manager.sweeps == ["a"] and manager.rescans == 1
    actions = [r["action"] for r in web.store.audit.recent(2)]
    assert actions == ["modem.rescan", "modem.sweep"]


def test_sweep_of_an_unknown_modem_is_404(web: Web) -> None:
    manager = _manager(web)
    client = web.client()
    token = csrf_token(client, "/modems")
    resp = client.post("/modems/nope/sweep", data={"csrf_token": token})
    assert resp.status_code == 404 and b"no configured modem" in resp.data
    assert manager.sweeps == []


def test_agents_cannot_sweep_or_rescan(web: Web) -> None:
    manager = _manager(web)
    client = web.client(AGENT)
    token = csrf_token(client, "/modems")
    assert client.post("/modems/a/sweep", data={"csrf_token": token}).status_code == 403
    assert client.post("/modems/rescan", data={"csrf_token": token}).status_code == 403
    assert manager.sweeps == [] and manager.rescans == 0


def test_csrf_is_enforced(web: Web) -> None:
    manager = _manager(web)
    client = web.client()
    assert client.post("/modems/a/sweep").status_code == 400
    assert client.post("/modems/rescan", data={"csrf_token": "forged"}).status_code == 400
    assert manager.sweeps == [] and manager.rescans == 0


def test_a_modem_failing_its_sends_is_shown_out_of_routing(web: Web) -> None:
    failing = ModemStatus(
        "a",
        label="Modem A",
        state="up",
        sending={
            "state": "failing",
            "failures": 3,
            "reason": "the SIM needs its PIN (+CMS ERROR: 311) <b>",
            "since": "2026-01-01T10:00:00+00:00",
            "next_check": "2026-01-01T10:05:00+00:00",
        },
    )
    probing = ModemStatus("b", state="up", sending={**failing.sending, "state": "probing"})
    web.use(manager=FakeManager([failing, probing]))
    html = web.client(AGENT).get("/modems").get_data(as_text=True)
    assert ">failing</span>" in html and ">probing</span>" in html
    assert "out of routing" in html
    assert "3 failed in a row (the SIM needs its PIN (+CMS ERROR: 311) &lt;b&gt;)" in html
    assert "checked again at 2026-01-01 10:05" in html
    assert "the next message it sends decides" in html
    assert failing.to_json()["state"] == "failing" and failing.to_json()["sending"]["failures"] == 3
