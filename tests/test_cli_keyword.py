"""``gateway keyword add|list|remove`` through the running daemon's control socket: the JSON
contract of docs/cli.md, the refusals with their field, and no daemon."""

from __future__ import annotations

import json

import pytest
from integration.harness import SUPPORT, Gateway, make_config

from gateway.cli import main
from gateway.config import load_config

KEYS = {
    "id",
    "short_code",
    "word",
    "reply",
    "campaign",
    "double_opt_in",
    "confirm_prompt",
    "time_limit_minutes",
    "questions",
    "done_reply",
    "exit_word",
    "exit_reply",
    "created_at",
    "created_by",
}


@pytest.fixture
def running(tmp_path):
    config = make_config(tmp_path)
    gw = Gateway(load_config(config))
    yield config, gw
    gw.stop()


def _run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_add_list_remove(running, capsys) -> None:
    config, gw = running
    code, reply, _ = _run(
        capsys,
        "keyword", "add", "-c", str(config), "--short-code", SUPPORT, "join",
        "--reply", "Welcome!", "--campaign", "Spring", "--double-opt-in",
        "--ask", "grade=Which grade?", "--choices", "grade=3, 4 ,5",
        "--invalid", "grade=3, 4 or 5 please",
    )  # fmt: skip
    assert code == 0 and reply["ok"]
    kw = reply["keyword"]
    assert set(kw) >= KEYS
    assert (kw["word"], kw["short_code"], kw["campaign"], kw["double_opt_in"]) == (
        "JOIN",
        SUPPORT,
        "Spring",
        True,
    )
    assert kw["questions"] == [
        {"field": "grade", "ask": "Which grade?", "choices": ["3", "4", "5"],
         "invalid": "3, 4 or 5 please"}
    ]  # fmt: skip
    assert kw["created_by"] == "cli" and "reply Y within 1 day" in kw["confirm_prompt"]
    code, reply, _ = _run(capsys, "keyword", "list", "-c", str(config))
    assert code == 0 and [k["word"] for k in reply["keywords"]] == ["JOIN"]
    assert reply["keywords"][0]["started"] == 0
    code, reply, _ = _run(capsys, "keyword", "list", "-c", str(config), "--short-code", "55999")
    assert code == 0 and reply["keywords"] == []
    assert gw.store.audit.recent(1)[0]["action"] == "keyword.add"
    code, reply, _ = _run(
        capsys, "keyword", "remove", "-c", str(config), "--short-code", SUPPORT, "Join"
    )
    assert code == 0 and reply["removed"]["word"] == "JOIN"
    code, reply, _ = _run(capsys, "keyword", "list", "-c", str(config))
    assert reply["keywords"] == []
    code, reply, _ = _run(
        capsys, "keyword", "remove", "-c", str(config), "--short-code", SUPPORT, "JOIN"
    )
    assert code == 1 and not reply["ok"] and "has no keyword" in reply["error"]


@pytest.mark.parametrize(
    ("argv", "field", "words"),
    [
        (["--short-code", SUPPORT, "STOP", "--reply", "x"], "word", "opt-out keyword"),
        (["--short-code", SUPPORT, "Start", "--reply", "x"], "word", "opt-in keyword"),
        (["--short-code", "999", "JOIN", "--reply", "x"], "short_code", "unknown short code"),
        (["--short-code", SUPPORT, "JOIN", "--reply", " "], "reply", "empty"),
        (
            ["--short-code", SUPPORT, "JOIN", "--reply", "x", "--time-limit", "0"],
            "time_limit_minutes",
            "between",
        ),
        (
            ["--short-code", SUPPORT, "JOIN", "--reply", "x", "--choices", "a=b"],
            "--choices",
            "which no --ask asks",
        ),
        (
            ["--short-code", SUPPORT, "JOIN", "--reply", "x", "--ask", "=Which?"],
            "--ask",
            "FIELD=TEXT",
        ),
    ],
)
def test_add_refusals_name_the_field(running, capsys, argv, field, words) -> None:
    config, gw = running
    code, reply, _ = _run(capsys, "keyword", "add", "-c", str(config), *argv)
    assert code == 1 and not reply["ok"]
    assert words in reply["errors"][field]
    assert gw.services.keywords.live() == []


def test_without_a_daemon_it_says_so(tmp_path, capsys) -> None:
    config = make_config(tmp_path)
    code, reply, err = _run(capsys, "keyword", "list", "-c", str(config))
    assert code == 1 and reply is None and "not running" in err
