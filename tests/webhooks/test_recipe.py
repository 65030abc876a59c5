"""The verification recipes of docs/webhooks.md, run as written: the Python function and the
shell/OpenSSL lines accept a delivery signed by the gateway and refuse a changed one."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gateway.messaging.webhooks import sign

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
SECRET = "0f8e7d6c5b4a39281706f5e4d3c2b1a0"
BODY = '{"id":"evt_1","type":"message.received","data":{"text":"Grüße 👋"}}'.encode()


def _block(after: str, lang: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(after)
    found = re.compile(rf"```{lang}\n(.*?)```", re.S).search(text, start)
    assert found, f"no {lang} block after {after!r} in {DOC}"
    return found.group(1)


def test_the_python_recipe() -> None:
    scope: dict = {}
    exec(_block("## Verifying a POST", "python"), scope)
    ts = str(int(time.time()))
    headers = {"X-Gateway-Timestamp": ts, "X-Gateway-Signature": sign(SECRET, ts, BODY)}
    assert scope["verify"](SECRET, headers, BODY)
    assert not scope["verify"](SECRET, headers, BODY.replace(b"1", b"2"))
    assert not scope["verify"]("another-secret-of-some-length", headers, BODY)
    old = str(int(time.time()) - 3600)
    stale = {"X-Gateway-Timestamp": old, "X-Gateway-Signature": sign(SECRET, old, BODY)}
    assert not scope["verify"](SECRET, stale, BODY)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_shell_recipe(tmp_path) -> None:
    script = _block("Shell, with OpenSSL", "sh")
    ts = str(int(time.time()))
    for body, answer in ((BODY, "valid"), (BODY + b" ", "FORGED")):
        (tmp_path / "body.json").write_bytes(body)
        env = {
            "PATH": "/usr/bin:/bin",
            "SECRET": SECRET,
            "HTTP_X_GATEWAY_TIMESTAMP": ts,
            "HTTP_X_GATEWAY_SIGNATURE": sign(SECRET, ts, BODY),
        }
        out = subprocess.run(
            ["sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == answer, out
