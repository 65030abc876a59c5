"""``gateway token create|list|revoke`` on the store in a data directory: JSON out, the token
shown once and usable on /api/v1, revoked for good; errors name what to fix."""

from __future__ import annotations

import json

from gateway.cli import main
from gateway.config import parse_config
from gateway.services import build_services
from gateway.store import Store
from gateway.web.app import create_app


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _api_me(data_dir, secret: str):
    config = parse_config(f"data_dir: {data_dir}\n")
    services = build_services(config, modems=False)
    try:
        client = create_app(services, TESTING=True).test_client()
        return client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    finally:
        services.close()


def test_create_list_revoke(tmp_path, capsys) -> None:
    store = Store.open(tmp_path)
    store.users.add("clinic", "a-long-password", role="agent")
    store.close()
    d = ("--data-dir", str(tmp_path))

    code, out, _ = _run(capsys, "token", "create", *d, "--user", "clinic", "--label", "bookings")
    assert code == 0
    made = json.loads(out)
    assert set(made) == {"id", "token", "user", "label", "created"}
    assert (made["user"], made["label"]) == ("clinic", "bookings")
    assert made["token"].startswith("gw_")
    assert _api_me(tmp_path, made["token"]).json["user"] == "clinic"

    code, out, _ = _run(capsys, "token", "list", *d)
    [listed] = json.loads(out)
    assert (listed["id"], listed["user"], listed["revoked"]) == (made["id"], "clinic", None)
    assert made["token"] not in out  # never shown again

    code, out, _ = _run(capsys, "token", "revoke", *d, str(made["id"]))
    assert code == 0 and json.loads(out)["revoked"] and json.loads(out)["changed"]
    assert _api_me(tmp_path, made["token"]).status_code == 401
    code, out, _ = _run(capsys, "token", "revoke", *d, str(made["id"]))
    assert code == 0 and json.loads(out)["changed"] is False


def test_errors_name_what_to_fix(tmp_path, capsys) -> None:
    Store.open(tmp_path).close()
    d = ("--data-dir", str(tmp_path))
    code, _, err = _run(capsys, "token", "create", *d, "--user", "nobody")
    assert code == 1 and "no user 'nobody'" in err
    code, _, err = _run(capsys, "token", "revoke", *d, "42")
    assert code == 1 and "no API token 42" in err
    code, out, _ = _run(capsys, "token", "list", *d)
    assert code == 0 and json.loads(out) == []
