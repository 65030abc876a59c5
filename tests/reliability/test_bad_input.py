"""Bad input at every entry: the control socket, the CLI, the web JSON API and the Text This
Profile form of the running daemon, and the configuration file. Wrong types, NUL and other
control characters, lone surrogates, huge and deeply nested bodies, over-long keys, keys used
again for another message: each gets a clear refusal (a 4xx, ``ok: false`` with the field, or
an error message and exit code), never a 500 or an internal error, and never a silent change of
what was asked (a text sent as "None", a key cut to fit). Nothing is stored for a refusal.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.harness import ALICE, BOB, SUPPORT, Gateway, make_config

from gateway.cli import main
from gateway.config import load_config

OK_TEXT = "Hello"
LONG_KEY = "k" * 201  # one over the limit: refused, never cut to the 200 it shares with others
DEEP = b"[" * 100_000 + b"]" * 100_000

# A send request's fields, wrong one at a time: (field that is wrong, its value).
BAD_FIELDS: list[tuple[str, Any]] = [
    ("text", None),
    ("text", ["a"]),
    ("text", 5),
    ("text", 1.5),
    ("text", True),
    ("text", {"a": 1}),
    ("text", "a\x00b"),
    ("text", "a\x1b[31mb"),
    ("text", "a\x07b"),
    ("text", "a\x7fb"),
    ("text", "a\x85b"),  # C1 next-line
    ("text", "a\ud800b"),  # lone high surrogate
    ("text", "\udfff"),  # lone low surrogate
    ("text", "x" * 10_001),
    ("short_code", 55123),
    ("short_code", ["55123"]),
    ("short_code", "551\x0023"),
    ("short_code", "5" * 33),
    ("short_code", "\ud800"),
    ("idempotency_key", 7),
    ("idempotency_key", ["k"]),
    ("idempotency_key", {"k": 1}),
    ("idempotency_key", True),
    ("idempotency_key", LONG_KEY),
    ("idempotency_key", "k\x00"),
    ("idempotency_key", "k\nk"),
    ("idempotency_key", "k\ud800"),
    ("idempotency_key", " k"),
]
# Only where a request names its recipient by number (control socket, CLI).
BAD_RECIPIENTS: list[tuple[str, Any]] = [
    ("to", None),
    ("to", 15551230001),
    ("to", [ALICE]),
    ("to", ALICE + "\x00"),
    ("to", "\ud800"),
    ("to", "1" * 41),
]


def count_out(gw: Gateway) -> int:
    return gw.store.db.value("SELECT COUNT(*) FROM messages WHERE direction = 'out'")


@pytest.fixture
def running(tmp_path) -> Iterator[tuple[Path, Gateway]]:
    config = make_config(tmp_path)
    gw = Gateway(load_config(config), web=True)
    gw.wait_up("a", "b", "c")
    yield config, gw
    gw.stop()


# -- control socket ------------------------------------------------------------------------


def control(gw: Gateway, payload: bytes) -> dict:
    """One raw request line to the daemon's control socket; its JSON answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        sock.connect(str(gw.config.data_dir / "gateway.sock"))
        sock.sendall(payload)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def send_line(**fields: Any) -> bytes:
    # ensure_ascii: a lone surrogate travels as the JSON escape \ud800, as any client sends it.
    return json.dumps({"op": "send", **fields}).encode() + b"\n"


def refused(reply: dict, field: str | None = None) -> str | None:
    """Why ``reply`` is not a clear refusal (of ``field``), or None when it is."""
    if reply.get("ok") is not False:
        return f"accepted: {reply}"
    error = reply.get("error")
    if not isinstance(error, str) or not error or "internal error" in error:
        return f"no clear error: {reply}"
    if field is not None and reply.get("field") != field:
        return f"field {reply.get('field')!r} instead of {field!r}: {reply}"
    return None


def test_control_socket_refuses_bad_send_requests_clearly(running):
    _config, gw = running
    problems = []
    cases = [(f, v) for f, v in BAD_FIELDS + BAD_RECIPIENTS]
    for field, value in cases:
        fields = {"to": ALICE, "text": OK_TEXT, field: value}
        why = refused(control(gw, send_line(**fields)), field)
        if why:
            problems.append(f"{field}={value!r:.40}: {why}")
    for fields, field in (
        ({"to": ALICE}, "text"),  # no text at all
        ({"to": ALICE, "text": OK_TEXT, "txt": "typo"}, "txt"),  # a misspelt field
        ({"to": ALICE, "text": OK_TEXT, "user": 5}, "user"),
        ({"text": OK_TEXT}, "to"),
    ):
        why = refused(control(gw, send_line(**fields)), field)
        if why:
            problems.append(f"{fields}: {why}")
    assert not problems, "\n".join(problems)
    assert count_out(gw) == 0


@pytest.mark.parametrize(
    "payload",
    [
        b"[1]\n",
        b'"send"\n',
        b"{}\n",
        b'{"op": 5}\n',
        b'{"op": "nope"}\n',
        b"not json\n",
        b"\xff\xfe{}\n",
        DEEP + b"\n",
        b'{"op": "send", "to": "' + ALICE.encode() + b'", "text": ' + DEEP + b"}\n",
        b'{"op": "send", "text": "' + b"x" * 300_000 + b'"}\n',
    ],
    ids=[
        "list",
        "string",
        "no-op",
        "op-number",
        "op-unknown",
        "not-json",
        "not-utf8",
        "deep",
        "deep-text",
        "huge",
    ],
)
def test_control_socket_refuses_malformed_requests_clearly(running, payload):
    _config, gw = running
    reply = control(gw, payload)
    assert refused(reply) is None, reply
    assert count_out(gw) == 0


def test_control_socket_idempotency_keys_are_whole_and_never_reused_for_another_message(running):
    _config, gw = running
    key = "k" * 200  # the longest key: taken whole
    first = control(gw, send_line(to=ALICE, text="first", idempotency_key=key))
    assert first["ok"] and first["created"], first
    # Two keys that share their first 200 characters can no longer meet: both are refused.
    for longer in (key + "A", key + "B"):
        assert (
            refused(
                control(gw, send_line(to=BOB, text="x", idempotency_key=longer)), "idempotency_key"
            )
            is None
        )
    # The same key again for the same message: the earlier one, nothing new.
    again = control(gw, send_line(to=ALICE, text="first", idempotency_key=key))
    assert again["ok"] and not again["created"] and again["id"] == first["id"], again
    # The same key for another recipient, text or short code: a conflict, not "ok".
    for fields in (
        {"to": BOB, "text": "first"},
        {"to": ALICE, "text": "second"},
        {"to": ALICE, "text": "first", "short_code": "55999"},
    ):
        reply = control(gw, send_line(idempotency_key=key, **fields))
        assert refused(reply, "idempotency_key") is None and reply.get("conflict") is True, reply
    assert count_out(gw) == 1


# -- CLI -----------------------------------------------------------------------------------


def cli_send(capsys, config: Path, *args: str) -> tuple[int, dict | None, str]:
    code = main(["send", "-c", str(config), *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


CLI_BAD: list[tuple[list[str], str]] = [
    (["--to", ALICE, "a\x1bb"], "text"),
    (["--to", ALICE, "a\x7fb"], "text"),
    (["--to", ALICE, "caf\udce9"], "text"),  # argv bytes that are not UTF-8 (surrogateescape)
    (["--to", ALICE, "x" * 10_001], "text"),
    (["--to", ALICE + "\x01", OK_TEXT], "to"),
    (["--to", ALICE, "--short-code", "55\x0b123", OK_TEXT], "short_code"),
    (["--to", ALICE, "--idempotency-key", LONG_KEY, OK_TEXT], "idempotency_key"),
    (["--to", ALICE, "--idempotency-key", "k\tk", OK_TEXT], "idempotency_key"),
    (["--to", ALICE, "--idempotency-key", "k\udcff", OK_TEXT], "idempotency_key"),
]


def test_cli_send_refuses_bad_arguments_with_the_field(running, capsys):
    config, gw = running
    problems = []
    for args, field in CLI_BAD:
        code, reply, err = cli_send(capsys, config, *args)
        why = "exit 0" if code == 0 else refused(reply or {}, field)
        if why:
            problems.append(f"{[a[:30] for a in args]}: {why} {err}")
    assert not problems, "\n".join(problems)
    assert count_out(gw) == 0

    code, reply, _ = cli_send(capsys, config, "--to", ALICE, "--idempotency-key", "cli-1", "one")
    assert code == 0 and reply["ok"]
    code, reply, _ = cli_send(capsys, config, "--to", BOB, "--idempotency-key", "cli-1", "one")
    assert code == 1 and reply["conflict"] and reply["field"] == "idempotency_key", reply
    assert count_out(gw) == 1


def test_cli_send_refuses_bad_arguments_without_a_daemon(tmp_path, capsys):
    """The same rules before anything is sent: a bad argument is named even when no daemon
    runs (and never reaches one)."""
    config = make_config(tmp_path)
    code, reply, _ = cli_send(capsys, config, "--to", ALICE, "--idempotency-key", LONG_KEY, "hi")
    assert code == 1 and reply["field"] == "idempotency_key" and "200" in reply["error"]


# -- web: JSON API and the Text This Profile form ------------------------------------------


class Browser:
    """A logged-in HTTP client of the daemon's web app (cookies and the CSRF token)."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        token = self.token("/login")
        status, _ = self.request(
            "POST",
            "/login",
            urllib.parse.urlencode(
                {"username": username, "password": password, "csrf_token": token}
            ).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status in (200, 302), status
        self.csrf = self.token("/home")

    def token(self, page: str) -> str:
        _, body = self.request("GET", page)
        found = re.search(r'name="csrf[-_]token" (?:content|value)="([^"]+)"', body.decode())
        assert found, f"no CSRF token on {page}"
        return found.group(1)

    def request(
        self, method: str, path: str, data: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, data=data, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def post_json(self, path: str, body: bytes) -> tuple[int, Any]:
        status, data = self.request(
            "POST",
            path,
            body,
            {"Content-Type": "application/json", "X-CSRFToken": self.csrf},
        )
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data[:200]

    def post_form(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        status, data = self.request(
            "POST",
            path,
            urllib.parse.urlencode({**fields, "csrf_token": self.csrf}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        return status, data.decode("utf-8", "replace")


@pytest.fixture
def web(running) -> tuple[Gateway, Browser, int, int]:
    _config, gw = running
    gw.store.users.add("admin", "admin-password", role="admin")
    browser = Browser(gw.daemon.web_server.url, "admin", "admin-password")
    alice = gw.store.profiles.get_or_create(ALICE)[0]["id"]
    bob = gw.store.profiles.get_or_create(BOB)[0]["id"]
    return gw, browser, alice, bob


def clear_4xx(status: int, body: Any, field: str | None = None) -> str | None:
    """Why an API answer is not a clear 4xx (naming ``field``), or None when it is."""
    if not 400 <= status < 500:
        return f"status {status}: {body!r:.200}"
    if not isinstance(body, dict) or not body.get("error"):
        return f"no JSON error: {body!r:.200}"
    if field is not None and body.get("field") != field:
        return f"field {body.get('field')!r} instead of {field!r}: {body}"
    return None


def test_web_api_refuses_bad_send_requests_clearly(web):
    gw, browser, alice, _bob = web
    path = f"/api/profiles/{alice}/messages"
    problems = []
    for field, value in BAD_FIELDS:
        body = json.dumps({"text": OK_TEXT, field: value}).encode()
        why = clear_4xx(*browser.post_json(path, body), field)
        if why:
            problems.append(f"{field}={value!r:.40}: {why}")
    for raw in (
        DEEP,
        b'{"text": ' + DEEP + b"}",
        b"[1]",
        b'"text"',
        b"5",
        b"not json",
        b"",
        b'{"text": "caf\xe9"}',  # Latin-1, not UTF-8
        b'{"text": "' + b"x" * 300_000 + b'"}',
        b'{"txt": "typo"}',
        b"{}",
    ):
        why = clear_4xx(*browser.post_json(path, raw))
        if why:
            problems.append(f"{raw[:30]!r}: {why}")
    assert not problems, "\n".join(problems)
    assert count_out(gw) == 0

    # Marking read with a body that is not JSON does not mark everything read.
    status, body = browser.post_json(f"/api/profiles/{alice}/read", DEEP)
    assert clear_4xx(status, body) is None
    status, body = browser.post_json(f"/api/profiles/{alice}/read", b'{"last_id": true}')
    assert clear_4xx(status, body, "last_id") is None


def test_web_api_idempotency_key_reuse_is_a_conflict(web):
    gw, browser, alice, bob = web
    send = lambda pid, **body: browser.post_json(  # noqa: E731
        f"/api/profiles/{pid}/messages", json.dumps(body).encode()
    )
    status, body = send(alice, text="one", idempotency_key="web-1")
    assert status == 201, body
    status, again = send(alice, text="one", idempotency_key="web-1")
    assert status == 200 and again["message"]["id"] == body["message"]["id"]
    for pid, text in ((bob, "one"), (alice, "two")):
        status, body = send(pid, text=text, idempotency_key="web-1")
        assert status == 409 and body["field"] == "idempotency_key", body
    assert count_out(gw) == 1


def test_text_this_profile_form_refuses_bad_input_clearly(web):
    gw, browser, alice, bob = web
    problems = []
    for fields in (
        {"text": "a\x00b", "short_code": SUPPORT, "idempotency_key": "form-1"},
        {"text": "a\x1bb", "short_code": SUPPORT, "idempotency_key": "form-1"},
        {"text": OK_TEXT, "short_code": SUPPORT, "idempotency_key": LONG_KEY},
        {"text": OK_TEXT, "short_code": SUPPORT, "idempotency_key": "form\x01"},
        {"text": OK_TEXT, "short_code": "55\x00123", "idempotency_key": "form-1"},
    ):
        status, page = browser.post_form(f"/profiles/{alice}/text", fields)
        if status != 400 or "Traceback" in page:
            problems.append(f"{fields}: status {status}")
    assert not problems, "\n".join(problems)
    assert count_out(gw) == 0

    # A key already used (here by the API for Alice) is refused for Bob, not silently "sent".
    status, _ = browser.post_json(
        f"/api/profiles/{alice}/messages",
        json.dumps({"text": OK_TEXT, "idempotency_key": "shared"}).encode(),
    )
    assert status == 201
    status, page = browser.post_form(
        f"/profiles/{bob}/text",
        {"text": OK_TEXT, "short_code": SUPPORT, "idempotency_key": "shared"},
    )
    assert status == 400 and "already used" in page, status
    assert count_out(gw) == 1


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n\n",
        b"# only a comment\n",
        b"---\n",
        b"data_dir: /tmp/x\x00\n",
        b"data_dir: caf\xe9\n",
        b"[" * 20_000,
        b"a: " + b"[" * 600 + b"]" * 600 + b"\n",
        b"- just\n- a list\n",
    ],
    ids=["empty", "blank", "comment", "document-marker", "nul", "latin1", "deep", "nested", "list"],
)
def test_configuration_that_configures_nothing_or_is_not_text_is_refused(tmp_path, capsys, content):
    path = tmp_path / "gateway.yaml"
    path.write_bytes(content)
    for argv, code in ((["config", "check", str(path)], 1), (["run", "-c", str(path)], 2)):
        assert main(argv) == code, argv
        out, err = capsys.readouterr()
        assert str(path) in out + err and "OK" not in out, out + err
