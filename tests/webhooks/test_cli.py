"""``gateway webhook add | list | remove`` print JSON for scripts and refuse with the field
at fault."""

from __future__ import annotations

import json

from gateway.cli import main
from gateway.messaging.webhooks import sign

CONFIG = """
data_dir: {data}
default_region: US
modems: [{{id: a, imei: "490154203237518"}}]
short_codes:
  - code: "55123"
    name: Support
    modems: [a]
    webhooks: [{{url: "https://crm.example.org/sms", secret: "0123456789abcdef0123"}}]
"""


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_remove(tmp_path, capsys) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG.format(data=tmp_path / "data"))
    c = ("-c", str(path))
    code, out, _ = _run(
        capsys, "webhook", "add", *c, "--short-code", "55123", "--url",
        "https://hooks.example.org/in", "--events", "inbound,status",
    )  # fmt: skip
    assert code == 0
    added = json.loads(out)
    assert set(added) == {"id", "url", "secret", "events"}
    assert added["events"] == ["inbound", "status"] and len(added["secret"]) == 64
    assert sign(added["secret"], 1, b"{}").startswith("sha256=")

    code, out, _ = _run(capsys, "webhook", "list", *c)
    listed = {h["url"]: h for h in json.loads(out)}
    assert listed["https://crm.example.org/sms"]["source"] == "config"
    assert listed["https://crm.example.org/sms"]["events"] == [
        "inbound",
        "status",
        "opt",
        "broadcast",
    ]
    assert listed["https://hooks.example.org/in"]["pending"] == 0
    assert "secret" not in listed["https://hooks.example.org/in"]

    code, _, err = _run(
        capsys, "webhook", "remove", *c, str(listed["https://crm.example.org/sms"]["id"])
    )
    assert code == 2 and "configuration file" in json.loads(err)["error"]["message"]
    code, out, _ = _run(capsys, "webhook", "remove", *c, str(added["id"]))
    assert code == 0 and json.loads(out)["removed"] == added["id"]
    code, out, _ = _run(capsys, "webhook", "list", *c)
    assert [h["url"] for h in json.loads(out)] == ["https://crm.example.org/sms"]


def test_add_refuses_a_bad_url_or_short_code(tmp_path, capsys) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG.format(data=tmp_path / "data"))
    for args, field in [
        (("--short-code", "55123", "--url", "file:///etc/passwd"), "url"),
        (("--short-code", "1", "--url", "https://a.example/h"), "short_code"),
        (("--short-code", "55123", "--url", "https://a.example/h", "--events", "sms"), "events"),
    ]:
        code, out, err = _run(capsys, "webhook", "add", "-c", str(path), *args)
        assert code == 2 and out == ""
        assert json.loads(err)["error"]["field"] == field
