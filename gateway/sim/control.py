"""The simulator's control API: a Python object (:class:`SimControl`) that the daemon and the web
app's Phones page call, and the same as JSON over HTTP on loopback (:class:`ControlServer`).

HTTP routes (JSON in and out; errors are ``{"error": "..."}`` with 400, 403, 404 or 415):

=======  ==============================  ====================================================
GET      /modems                         [{port, imei, iccid, number, family, serves, ...}]
                                        (serves: the short codes routed to it)
GET      /modems/IMEI                    one modem
GET      /modems/IMEI/stored             its storage
POST     /modems/IMEI/fault              {"kind", "when"?, params...}: inject a fault now,
                                        or armed for a moment of the next send
DELETE   /modems/IMEI/fault[?kind=K]     clear one fault (or all)
POST     /modems/IMEI/replug             plug it back in
GET      /handsets                       [{number, ...}]
POST     /handsets                       {"number"}: add a handset
POST     /handsets/NUMBER/send           {"to", "text"}: the handset texts; 400
                                        "not delivered: no such number TO" when no
                                        modem or handset has or serves TO
GET      /handsets/NUMBER/inbox          [{sender, text, time, parts}]
=======  ==============================  ====================================================

It is for programs on this machine (tests, ``curl``), never for a web page: a page elsewhere
could otherwise make a visitor's browser inject faults or send texts (a cross-origin
``text/plain`` POST needs no permission). So every POST must say ``Content-Type:
application/json`` (415 otherwise; a browser cannot send that cross-origin without a preflight,
which this server does not answer), and a request whose ``Origin`` is another site, or whose
``Host`` is not this server's loopback address (DNS rebinding), is refused with 403.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from gateway.modem.errors import CodecError
from gateway.sim.errors import FaultError, SimError, UnknownHandset, UnknownModem
from gateway.sim.network import Network

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class BadRequest(SimError, ValueError):
    """A control request with a missing or malformed field."""


class Forbidden(SimError):
    """A request from a web page of another site, or for a host name that is not ours."""


class NotJson(SimError):
    """A POST whose Content-Type is not application/json."""


class SimControl:
    """Operations on a running simulated network, returning plain JSON-ready data."""

    def __init__(self, network: Network) -> None:
        self.network = network

    def modems(self) -> list[dict[str, Any]]:
        return [self._summary(m) for m in self.network.modems]

    def modem(self, imei: str) -> dict[str, Any]:
        return self._summary(self.network.modem(imei))

    def _summary(self, modem: Any) -> dict[str, Any]:
        """A modem's summary with the other numbers (short codes) routed to it."""
        return {**modem.summary(), "serves": self.network.served_numbers(modem)}

    def add_modem(self, **options: Any) -> dict[str, Any]:
        return self.network.add_modem(**options).summary()

    def stored(self, imei: str) -> list[dict[str, Any]]:
        return self.network.modem(imei).stored()

    def set_fault(self, imei: str, kind: str, **params: Any) -> dict[str, Any]:
        modem = self.network.modem(imei)
        modem.set_fault(kind, **params)
        return modem.summary()

    def clear_fault(self, imei: str, kind: str | None = None) -> dict[str, Any]:
        modem = self.network.modem(imei)
        modem.clear_fault(kind)
        return modem.summary()

    def replug(self, imei: str) -> dict[str, Any]:
        modem = self.network.modem(imei)
        modem.replug()
        return modem.summary()

    def handsets(self) -> list[dict[str, Any]]:
        return [h.summary() for h in self.network.handsets]

    def add_handset(self, number: str) -> dict[str, Any]:
        return self.network.add_handset(number).summary()

    def send(self, number: str, to: str, text: str) -> dict[str, Any]:
        """The handset ``number`` texts ``to``; returns how many PDUs went out. NoSuchNumber
        (400 over HTTP, "not delivered: no such number ...") when nobody has or serves ``to``."""
        if not isinstance(to, str) or not to:
            raise BadRequest('"to" must be a phone number')
        if not isinstance(text, str):
            raise BadRequest('"text" must be a string')
        pdus = self.network.handset(number).send(to=to, text=text)
        return {"from": number, "to": to, "parts": len(pdus)}

    def inbox(self, number: str) -> list[dict[str, Any]]:
        return [m.to_json() for m in self.network.handset(number).inbox]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control %s: " + format, self.address_string(), *args)

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise BadRequest(f"body of {length} bytes is larger than {MAX_BODY}")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        return body

    def _check_caller(self, method: str) -> None:
        """Refuse what a web page could make a browser send (see the module docstring)."""
        port = self.server.server_address[1]
        ours = {f"{name}:{port}" for name in (*LOOPBACK_NAMES, self.server.host_name)}
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in ours:
            raise Forbidden(
                f"Host {host or '(none)'!r} is not this control API's address "
                f"(use http://127.0.0.1:{port})"
            )
        origin = self.headers.get("Origin")
        if origin is not None and origin.strip().lower() not in {f"http://{h}" for h in ours}:
            raise Forbidden(f"requests from web pages of {origin!r} are not accepted")
        if method == "POST":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                raise NotJson(f"POST needs Content-Type: application/json, not {ctype or 'none'!r}")

    def _route(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/") if p]
        query = parse_qs(url.query)
        control = self.server.control
        try:
            self._check_caller(method)
            result = self._dispatch(control, method, parts, query)
        except Forbidden as exc:
            log.warning("control %s: refused: %s", self.address_string(), exc)
            self._reply(HTTPStatus.FORBIDDEN, {"error": str(exc)})
        except NotJson as exc:
            self._reply(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": str(exc)})
        except (UnknownModem, UnknownHandset) as exc:
            self._reply(HTTPStatus.NOT_FOUND, {"error": str(exc)})
        except (BadRequest, FaultError, CodecError, SimError, ValueError, TypeError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        else:
            if result is None:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {method} {url.path}"})
            else:
                self._reply(HTTPStatus.OK, result)

    def _dispatch(
        self, c: SimControl, method: str, parts: list[str], query: dict[str, list[str]]
    ) -> Any:
        match (method, parts):
            case ("GET", ["modems"]):
                return c.modems()
            case ("GET", ["modems", imei]):
                return c.modem(imei)
            case ("GET", ["modems", imei, "stored"]):
                return c.stored(imei)
            case ("POST", ["modems", imei, "fault"]):
                body = self._body()
                kind = body.pop("kind", None)
                if not isinstance(kind, str):
                    raise BadRequest('"kind" is required: ' + "hang, unplug, garbage, ...")
                return c.set_fault(imei, kind, **body)
            case ("DELETE", ["modems", imei, "fault"]):
                return c.clear_fault(imei, (query.get("kind") or [None])[0])
            case ("POST", ["modems", imei, "replug"]):
                return c.replug(imei)
            case ("GET", ["handsets"]):
                return c.handsets()
            case ("POST", ["handsets"]):
                number = self._body().get("number")
                if not isinstance(number, str):
                    raise BadRequest('"number" is required')
                return c.add_handset(number)
            case ("POST", ["handsets", number, "send"]):
                body = self._body()
                return c.send(number, body.get("to"), body.get("text"))  # type: ignore[arg-type]
            case ("GET", ["handsets", number, "inbox"]):
                return c.inbox(number)
        return None

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], control: SimControl) -> None:
        self.control = control
        host = address[0].lower()
        self.host_name = f"[{host}]" if ":" in host else host  # as it appears in a Host header
        super().__init__(address, _Handler)


class ControlServer:
    """Serves a SimControl as JSON over HTTP on ``host:port`` (port 0: any free port)."""

    def __init__(self, control: SimControl, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), control)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sim-control", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
