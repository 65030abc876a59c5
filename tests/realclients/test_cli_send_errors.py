"""`gateway modem send` gives a refused send's +CMS ERROR as fields a script can read: the code
(``cms_error``) and whether the daemon would try again (``retryable``), the daemon's own rule."""

from __future__ import annotations

import json

import pytest

from gateway.cli import main
from gateway.messaging.failures import Blame, classify_cms
from gateway.sim import Network

PEER = "+15551230001"


@pytest.fixture
def sim(tmp_path):
    with Network(tmp_path, seed=5, reorder_probability=0.0) as net:
        net.add_handset(PEER)
        yield net.add_modem("generic")


def send(capsys, port: str, *argv: str) -> tuple[int, dict]:
    code = main(["modem", "--port", port, "--timeout", "2", "send", *argv])
    [line] = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(line)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [(500, True), (331, True), (42, True), (21, False), (304, False), (1, False)],
)
def test_cms_error_code_and_retryable(sim, capsys, code, retryable):
    # The daemon's classification, checked here too: anything not the message's is retried.
    assert (classify_cms(code)[0] is not Blame.MESSAGE) is retryable
    sim.set_fault("cms_error", code=code)
    status, out = send(capsys, sim.port, PEER, "nope")
    assert status == 1
    err = out["error"]
    assert (err["cms_error"], err["retryable"]) == (code, retryable)
    assert err["failed_part"] == 1


def test_cms_error_without_a_code(sim, capsys):
    sim.set_fault("cms_error", code=None)
    _, out = send(capsys, sim.port, PEER, "nope")
    assert out["error"]["cms_error"] is None
    assert out["error"]["retryable"] is True  # as the daemon: an unnamed error is tried again


def test_second_part_refused_keeps_the_first(sim, capsys):
    sim.set_fault("cms_error", code=21, skip=1)
    _, out = send(capsys, sim.port, PEER, "x" * 200)
    err = out["error"]
    assert (err["cms_error"], err["retryable"], err["failed_part"]) == (21, False, 2)
    assert len(err["sent"]) == 1


def test_other_errors_have_no_cms_fields(sim, capsys):
    _, out = send(capsys, sim.port, "not-a-number", "hi")
    assert "cms_error" not in out["error"] and "retryable" not in out["error"]
