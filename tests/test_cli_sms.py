"""``gateway sms count|encode|decode``: JSON keys other tools rely on, stdin mode, errors."""

from __future__ import annotations

import io
import json

import pytest

from gateway import cli
from gateway.modem import pdu

HOW_ARE_YOU = "07911326040000F0040B911346610089F60000208062917314800CC8F71D14969741F977FD07"
STATUS = "0006D60B911326880736F4111011719551401110117195714000"
REF16 = "00400B917477000921F30000421020304050000D06080412340101C8329BFD06"


@pytest.fixture(autouse=True)
def _state_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path / "state"))


def run(capsys, *argv: str) -> tuple[int, list[dict]]:
    code = cli.main(["sms", *argv])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


# --- count --------------------------------------------------------------------------------------


def test_count_keys_and_values(capsys) -> None:
    code, (out,) = run(capsys, "count", "Hello {world}")
    assert code == 0
    assert {"encoding", "parts", "units", "remaining", "unicode_chars"} <= set(out)
    assert (out["encoding"], out["parts"], out["units"], out["remaining"]) == ("gsm7", 1, 15, 145)
    assert out["unicode_chars"] == []


def test_count_unicode_chars(capsys) -> None:
    code, (out,) = run(capsys, "count", "It’s 😀")
    assert code == 0
    assert (out["encoding"], out["units"], out["remaining"]) == ("ucs2", 7, 63)
    assert [(u["char"], u["position"], u["replacement"]) for u in out["unicode_chars"]] == [
        ("’", 2, "'"),
        ("😀", 5, None),
    ]
    assert out["unicode_chars"][1]["codepoint"] == "U+1F600"


def test_count_options(capsys) -> None:
    _, (out,) = run(capsys, "count", "a" * 161, "--ref16")
    assert (out["parts"], out["remaining"]) == (2, 143)
    _, (out,) = run(capsys, "count", "abc", "--encoding", "ucs2")
    assert (out["encoding"], out["remaining"]) == ("ucs2", 67)
    _, (out,) = run(capsys, "count", "a" * 400, "--max-parts", "2")
    assert out["parts"] == 3 and out["too_long"] is True


def test_count_error_is_json(capsys) -> None:
    code, (out,) = run(capsys, "count", "Ж", "--encoding", "gsm7")
    assert code == 1
    assert set(out) == {"error"}
    assert {"message", "where", "why"} <= set(out["error"])
    assert "U+0416" in out["error"]["why"]


# --- encode -------------------------------------------------------------------------------------


def test_encode_single_part(capsys) -> None:
    code, (out,) = run(capsys, "encode", "--to", "+27820001111", "Hello World!")
    assert code == 0
    assert out["encoding"] == "gsm7"
    assert out["parts"] == [
        {"pdu": "0001000B917228001011F100000CC8329BFD065DDF72363904", "length": 24}
    ]
    assert out["reference"] is None


def test_encode_all_options(capsys) -> None:
    code, (out,) = run(
        capsys,
        "encode",
        "--to",
        "+44 7700 900123",
        "--smsc",
        "+447785016005",
        "--status-report",
        "--validity",
        "2",
        "--flash",
        "--reject-duplicates",
        "--encoding",
        "ucs2",
        "hi",
    )
    assert code == 0
    (part,) = out["parts"]
    decoded = pdu.decode(part["pdu"])
    assert decoded.smsc == "+447785016005" and decoded.number == "+447700900123"
    assert decoded.status_report_request and decoded.reject_duplicates
    assert decoded.validity == 5 and decoded.message_class == 0 and decoded.encoding == "ucs2"
    raw = bytes.fromhex(part["pdu"])
    assert part["length"] == len(raw) - 1 - raw[0]


def test_encode_multipart_references_advance_and_persist(capsys, tmp_path) -> None:
    refs = []
    for _ in range(3):
        code, (out,) = run(capsys, "encode", "--to", "+15551234567", "x" * 200)
        assert code == 0 and len(out["parts"]) == 2
        refs.append(out["reference"])
        assert {pdu.decode(p["pdu"]).concat.reference for p in out["parts"]} == {out["reference"]}
    assert refs[1] == (refs[0] + 1) % 256 and refs[2] == (refs[1] + 1) % 256
    assert (tmp_path / "state" / "concat-refs.json").exists()


def test_encode_ref16_and_explicit_reference(capsys) -> None:
    _, (out,) = run(capsys, "encode", "--to", "+1", "--ref16", "--reference", "4660", "x" * 200)
    assert out["reference"] == 4660
    assert all(pdu.decode(p["pdu"]).concat.bits == 16 for p in out["parts"])


@pytest.mark.parametrize(
    "argv",
    [
        ["--to", "Hello", "x"],  # not a number
        ["--to", "+1", "--validity", "0", "x"],
        ["--to", "+1", "--encoding", "gsm7", "Ж"],
        ["--to", "+1", "--max-parts", "1", "x" * 200],
        ["--to", "+1", "--reference", "999", "x" * 200],
    ],
)
def test_encode_errors_are_json(capsys, argv: list[str]) -> None:
    code, (out,) = run(capsys, "encode", *argv)
    assert code == 1
    assert "error" in out and out["error"]["message"]


def test_encode_requires_to(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["sms", "encode", "x"])
    assert info.value.code == 2


def test_encode_unusable_state_dir_is_json_error(capsys, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(blocker))  # a file where a directory should be
    code, (out,) = run(capsys, "encode", "--to", "+1", "x" * 200)
    assert code == 1 and "error" in out


# --- decode -------------------------------------------------------------------------------------

DECODE_KEYS = {"type", "number", "text", "timestamp", "concat", "status", "reference"}


def test_decode_deliver(capsys) -> None:
    code, (out,) = run(capsys, "decode", HOW_ARE_YOU)
    assert code == 0
    assert set(out) >= DECODE_KEYS
    assert out["type"] == "deliver"
    assert out["number"] == "+31641600986"
    assert out["text"] == "How are you?"
    assert out["timestamp"] == "2002-08-26T19:37:41+02:00"
    assert out["concat"] is None and out["status"] is None and out["reference"] is None


def test_decode_concat_and_no_smsc(capsys) -> None:
    code, (out,) = run(capsys, "decode", "--no-smsc", REF16[2:])
    assert code == 0
    assert out["text"] == "Hello"
    assert out["concat"] == {"ref": 0x1234, "total": 1, "seq": 1, "bits": 16}


def test_decode_status_report(capsys) -> None:
    _, (out,) = run(capsys, "decode", STATUS)
    assert set(out) >= DECODE_KEYS
    assert (out["type"], out["status"], out["reference"], out["text"]) == (
        "status-report",
        0,
        214,
        None,
    )
    assert out["status_category"] == "delivered"
    assert out["timestamp"] == "2011-01-11T17:59:15+01:00"


def test_decode_submit(capsys) -> None:
    (part,) = pdu.encode_submit("+1", "hi", message_reference=9)
    _, (out,) = run(capsys, "decode", part.pdu)
    assert (out["type"], out["number"], out["text"], out["reference"]) == ("submit", "+1", "hi", 9)
    assert out["timestamp"] is None


def test_decode_error(capsys) -> None:
    code, (out,) = run(capsys, "decode", "0011ZZ")
    assert code == 1
    assert out["error"]["where"] == "PDU"


def test_decode_stdin_line_by_line(capsys, monkeypatch) -> None:
    lines = [HOW_ARE_YOU, "", "nonsense", STATUS, "  " + REF16 + "  ", "07"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    code, out = run(capsys, "decode", "-")
    assert code == 1  # some lines failed
    assert len(out) == 5  # the blank line is skipped
    assert out[0]["text"] == "How are you?"
    assert out[1]["error"]["line"] == 3 and "message" in out[1]["error"]
    assert out[2]["type"] == "status-report"
    assert out[3]["text"] == "Hello"
    assert out[4]["error"]["line"] == 6


def test_decode_stdin_all_good_exits_0(capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(HOW_ARE_YOU + "\n" + STATUS))
    code, out = run(capsys, "decode", "-")
    assert code == 0 and [o["type"] for o in out] == ["deliver", "status-report"]


def test_decode_stdin_no_smsc(capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(REF16[2:] + "\n"))
    code, (out,) = run(capsys, "decode", "--no-smsc", "-")
    assert code == 0 and out["text"] == "Hello"


def test_output_is_utf8_json_not_escaped(capsys) -> None:
    cli.main(["sms", "decode", pdu.encode_deliver("+1", "😀")[0]])
    raw = capsys.readouterr().out
    assert "😀" in raw and "\\ud83d" not in raw
