"""The configuration loader: the shipped files load, and every error names file, line and key."""

from __future__ import annotations

import argparse
import datetime
import io
import re
import textwrap
import typing
from pathlib import Path

import pytest

from gateway import config as cfg
from gateway.commands import config as config_command
from gateway.config import ConfigError, default_config, load_config, parse_config
from gateway.config.reader import key_paths

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "gateway.example.yaml"
DEMO = ROOT / "config" / "demo.yaml"

# A small valid file the error tests start from.
BASE = """\
modems:
  - id: a
    imei: "351234560000010"
  - id: b
    imei: "351234560000028"
short_codes:
  - code: "55123"
    name: Support
    modems: [a, b]
"""


def parse(text: str, **kwargs: typing.Any) -> cfg.Config:
    return parse_config(textwrap.dedent(text), "gw.yaml", **kwargs)


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value


def only_issue(text: str) -> cfg.ConfigIssue:
    err = error_of(text)
    assert len(err.issues) == 1, str(err)
    return err.issues[0]


# ---------------------------------------------------------------------------- shipped files


def test_example_loads_without_warnings() -> None:
    config = load_config(EXAMPLE)
    assert config.source == EXAMPLE
    assert config.warnings == ()
    assert [m.id for m in config.modems] == ["support-1", "861234567890135", "alerts"]
    assert config.modems[0].pin == "1234"
    assert config.modems[0].quiet_hours == cfg.QuietHours(
        start=datetime.time(21), end=datetime.time(8)
    )
    assert config.short_code("55123").default_modem == "support-1"
    assert config.web.https


def test_example_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    keys = {path.rsplit(".", 1)[-1] for path in key_paths(cfg.Config)}
    assert len(keys) > 60
    missing = [k for k in sorted(keys) if f"{k}:" not in text]
    assert missing == []


def test_example_commented_sections_are_valid() -> None:
    """The simulator and demo blocks are commented out; uncommented, they still load."""
    lines = EXAMPLE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# simulator:"))
    # Keep the commented keys ("# simulator:", "#   dir: ..."), drop the prose between them.
    tail = [line[2:] for line in lines[start:] if re.match(r"# (simulator:|demo:|  )", line)]
    text = "\n".join(lines[:start] + tail)
    config = parse_config(text, "example-uncommented")
    assert config.simulator is not None and config.simulator.modems[0].family == "huawei"
    assert config.demo is not None
    assert config.demo.conversations[0].messages[1].outbound


def test_demo_loads() -> None:
    config = load_config(DEMO)
    assert config.warnings == ()
    assert config.data_dir == (ROOT / "var" / "demo").resolve()
    sim = config.simulator
    assert sim is not None and sim.dir == config.data_dir / "sim"
    assert [m.family for m in sim.modems] == ["huawei", "simcom", "quectel"]
    assert [m.number for m in sim.modems] == [f"+1555010000{i}" for i in (1, 2, 3)]
    assert {s.code: s.name for s in config.short_codes} == {"55123": "Support", "55999": "Alerts"}
    assert len(config.short_code("55123").modems) == 2
    # Config modems name the simulated ones by IMEI and need no port.
    assert {m.imei for m in config.modems} == {m.imei for m in sim.modems}
    assert all(m.port is None for m in config.modems)
    demo = config.demo
    assert demo is not None and (demo.admin_user, demo.admin_password) == ("admin", "demo1234")
    assert 8 <= len(demo.profiles) <= 12
    assert any(p.opted_out for p in demo.profiles)
    assert any(p.status == "inactive" for p in demo.profiles)
    assert all("school" in p.custom for p in demo.profiles)
    # The simulator invents no phones in the demo: every profile has its own handset.
    assert not sim.auto_handsets
    assert {h.number for h in sim.handsets} == {p.phone for p in demo.profiles}


def test_demo_data_dir_override_moves_derived_paths(tmp_path: Path) -> None:
    config = load_config(DEMO, data_dir=tmp_path / "d")
    assert config.data_dir == tmp_path / "d"
    assert config.web.secret_key_file == tmp_path / "d" / "secret_key"
    assert config.simulator is not None and config.simulator.dir == tmp_path / "d" / "sim"


def test_sim_families_match_the_simulator() -> None:
    families = pytest.importorskip("gateway.sim.families")
    assert set(cfg.SIM_FAMILIES) == set(families.FAMILIES)


# ---------------------------------------------------------------------------- defaults


def test_defaults() -> None:
    config = default_config()
    assert config.data_dir == Path("/var/lib/gateway")
    assert (config.default_region, config.timezone) == ("US", "UTC")
    assert config.web == cfg.WebConfig(secret_key_file=Path("/var/lib/gateway/secret_key"))
    assert (config.web.bind, config.web.port, config.web.session_hours) == ("127.0.0.1", 8080, 12)
    assert config.modems == () and config.short_codes == ()
    assert config.messages.max_parts == 10 and config.messages.expiry_hours == 24
    assert config.retention.backup_time == datetime.time(3, 30)
    assert config.retention.messages_days is None
    assert config.modem_manager.scan[0] == "/dev/serial/by-id/*"
    assert config.simulator is None and config.demo is None
    assert "help" in config.agent.urgent_words


def test_modem_and_short_code_defaults() -> None:
    config = parse(
        """\
        modems:
          - imei: "351234560000010"
          - iccid: "8900101000000000019"
        short_codes:
          - {code: 55123, name: Support, modems: ["351234560000010", "8900101000000000019"]}
        """
    )
    first = config.modems[0]
    assert first.id == "351234560000010"
    assert config.modems[1].id == "8900101000000000019"
    assert (first.baudrate, first.rtscts, first.status_reports) == (115200, False, True)
    assert first.rate_limit == cfg.RateLimit() and first.quiet_hours is None
    short = config.short_codes[0]
    assert short.code == "55123"  # an unquoted number is kept as written
    assert short.keywords.opt_out[0] == "STOP" and short.keywords.oops == ("OOPS",)
    assert short.reply("opt_out").startswith("You are unsubscribed from Support")
    assert config.short_code_of_modem("351234560000010") is short


def test_yaml_pitfalls_are_read_as_written() -> None:
    """Times, leading zeros and + are taken from the text, not from YAML 1.1's resolver."""
    config = parse(
        """\
        modems:
          - imei: 012345670123456
            smsc: +15550109999
            quiet_hours: {start: 22:30, end: 07:00}
        short_codes:
          - {code: "1", name: S, modems: ["012345670123456"]}
        retention: {backup_time: 02:15}
        """
    )
    modem = config.modems[0]
    assert modem.imei == "012345670123456"
    assert modem.smsc == "+15550109999"
    assert modem.quiet_hours is not None
    assert modem.quiet_hours.start == datetime.time(22, 30)
    assert modem.quiet_hours.contains(datetime.time(23, 0))
    assert modem.quiet_hours.contains(datetime.time(6, 59))
    assert not modem.quiet_hours.contains(datetime.time(7, 0))
    assert config.retention.backup_time == datetime.time(2, 15)


def test_numbers_become_e164_in_the_default_region() -> None:
    config = parse(
        """\
        default_region: gb
        simulator:
          modems: [{imei: "351234560000010", number: "07700 900123"}]
          handsets: [{number: "+1 (555) 123-0001"}]
        """
    )
    assert config.default_region == "GB"
    assert config.simulator is not None
    assert config.simulator.modems[0].number == "+447700900123"
    assert config.simulator.handsets[0].number == "+15551230001"


def test_keywords_are_normalised() -> None:
    config = parse(
        BASE
        + """\
    keywords: {opt_out: [stop, "stop all"], help: [aide]}
"""
    )
    keywords = config.short_codes[0].keywords
    assert keywords.opt_out == ("STOP", "STOPALL")
    assert keywords.help == ("AIDE",) and keywords.opt_in == ("START", "UNSTOP")


def test_merge_keys_work() -> None:
    config = parse(
        """\
        modems:
          - &first {id: a, imei: "351234560000010", baudrate: 9600}
          - {<<: *first, id: b, imei: "351234560000028"}
        short_codes: [{code: "1", name: S, modems: [a, b]}]
        """
    )
    assert config.modems[1].baudrate == 9600 and config.modems[1].id == "b"


# ---------------------------------------------------------------------------- paths


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "gw.yaml"
    path.write_text(
        "data_dir: state\n"
        "web: {tls_cert: tls/cert.pem, tls_key: /abs/key.pem}\n"
        "simulator: {dir: ../sim}\n"
    )
    config = load_config(path)
    assert config.data_dir == folder / "state"
    assert config.web.tls_cert == folder / "tls" / "cert.pem"
    assert config.web.tls_key == Path("/abs/key.pem")
    assert config.web.secret_key_file == folder / "state" / "secret_key"
    assert config.simulator is not None and config.simulator.dir == tmp_path / "sim"


def test_parse_config_resolves_against_base_dir(tmp_path: Path) -> None:
    config = parse("data_dir: x\n", base_dir=tmp_path)
    assert config.data_dir == tmp_path / "x"


# ---------------------------------------------------------------------------- errors


def test_error_names_file_line_and_key() -> None:
    text = BASE + "    default_modem: a\nweb:\n  port: eighty\n"
    issue = only_issue(text)
    assert (issue.file, issue.line, issue.key) == ("gw.yaml", 12, "web.port")
    assert 'expected a whole number from 0 to 65535, got "eighty"' in issue.problem
    err = error_of(text)
    assert (err.file, err.line, err.key, err.problem) == (
        issue.file,
        issue.line,
        issue.key,
        issue.problem,
    )
    assert str(err).startswith("gw.yaml line 12, web.port: expected a whole number")


def test_nested_wrong_type_has_full_key_path() -> None:
    issue = only_issue(
        BASE.replace(
            'imei: "351234560000028"',
            'imei: "351234560000028"\n    rate_limit:\n      per_minute: ten',
        )
    )
    assert issue.key == "modems[1].rate_limit.per_minute"
    assert issue.line == 7
    assert str(issue) == (
        'gw.yaml line 7, modems[1].rate_limit.per_minute: expected a whole number ≥ 0, got "ten"'
    )


def test_unknown_key_suggests_the_right_one() -> None:
    issue = only_issue(BASE + "web:\n  sesion_hours: 3\n")
    assert (issue.line, issue.key) == (11, "web.sesion_hours")
    assert "did you mean 'session_hours'?" in issue.problem


def test_unknown_top_level_key_without_close_match_lists_known_keys() -> None:
    issue = only_issue("zzz: 1\n")
    assert issue.key == "zzz" and "expected one of default_region, data_dir" in issue.problem


def test_missing_required_key() -> None:
    issue = only_issue(BASE.replace("    name: Support\n", ""))
    assert (issue.line, issue.key) == (7, "short_codes[0].name")
    assert "required" in issue.problem


def test_unknown_modem_in_pool() -> None:
    issue = only_issue(BASE.replace("modems: [a, b]", "modems: [a, bb]"))
    assert (issue.line, issue.key) == (9, "short_codes[0].modems[1]")
    assert "unknown modem 'bb'" in issue.problem and "did you mean 'b'?" in issue.problem


def test_duplicate_code() -> None:
    text = BASE + '  - code: "55123"\n    name: Other\n    modems: [b]\n'
    err = error_of(text)
    keys = {(i.line, i.key) for i in err.issues}
    assert (10, "short_codes[1].code") in keys
    assert any("already used by short_codes[0]" in i.problem for i in err.issues)


def test_duplicate_modem_id_and_yaml_key() -> None:
    issue = only_issue(BASE.replace("id: b", "id: a").replace("[a, b]", "[a]"))
    assert (issue.line, issue.key) == (4, "modems[1].id")
    assert "'a' is already used by modems[0]" in issue.problem
    issue = only_issue(BASE + "timezone: UTC\ntimezone: UTC\n")
    assert (issue.line, issue.key) == (11, "timezone") and "duplicate" in issue.problem


def test_bad_time() -> None:
    issue = only_issue(BASE + "retention:\n  backup_time: '25:00'\n")
    assert (issue.line, issue.key) == (11, "retention.backup_time")
    assert '"HH:MM"' in issue.problem


def test_empty_quiet_hours() -> None:
    issue = only_issue(
        BASE.replace(
            'imei: "351234560000010"',
            'imei: "351234560000010"\n    quiet_hours: {start: "22:00", end: "22:00"}',
        )
    )
    assert issue.key == "modems[0].quiet_hours.end" and "empty" in issue.problem


def test_bad_region() -> None:
    issue = only_issue("default_region: XX\n")
    assert (issue.line, issue.key) == (1, "default_region")
    assert "region code" in issue.problem


def test_bad_timezone_suggests() -> None:
    issue = only_issue("\ntimezone: Europe/Pariss\n")
    assert (issue.line, issue.key) == (2, "timezone")
    assert "did you mean 'Europe/Paris'?" in issue.problem


def test_pin_given_as_int() -> None:
    issue = only_issue(BASE.replace("id: b", "id: b\n    pin: 0012"))
    assert (issue.line, issue.key) == (5, "modems[1].pin")
    assert "quotes" in issue.problem
    ok = parse(BASE.replace("id: b", 'id: b\n    pin: "0012"'))
    assert ok.modems[1].pin == "0012"


def test_cert_without_key() -> None:
    issue = only_issue("web:\n  bind: 127.0.0.1\n  tls_cert: /etc/cert.pem\n")
    assert (issue.line, issue.key) == (3, "web.tls_cert")
    assert "without tls_key" in issue.problem


def test_default_modem_outside_pool() -> None:
    text = BASE.replace("modems: [a, b]", "modems: [a]\n    default_modem: b")
    err = error_of(text)
    assert err.issues[0].key == "short_codes[0].default_modem"
    assert "not in this short code's modems" in err.issues[0].problem


def test_modems_without_short_codes_and_pool_without_modems() -> None:
    issue = only_issue(BASE.split("short_codes:")[0])
    assert issue.key == "short_codes" and "no short code" in issue.problem
    issue = only_issue(BASE.replace("modems: [a, b]", "modems: []"))
    assert issue.key == "short_codes[0].modems" and "at least 1" in issue.problem


def test_modem_in_two_short_codes() -> None:
    issue = only_issue(BASE + '  - code: "55999"\n    name: Alerts\n    modems: [b]\n')
    assert issue.key == "short_codes[1].modems[0]" and "already in short code" in issue.problem


def test_modem_needs_an_identity() -> None:
    issue = only_issue(BASE.replace('    imei: "351234560000028"\n', "    label: x\n"))
    assert issue.key == "modems[1]" and "imei, iccid or port" in issue.problem


def test_bad_reply_placeholder_and_overlapping_keywords() -> None:
    err = error_of(BASE + "    replies: {help: 'hi {nme}'}\n    keywords: {opt_in: [STOP]}\n")
    problems = {i.key: i.problem for i in err.issues}
    assert "unknown placeholder {nme}" in problems["short_codes[0].replies.help"]
    assert "both in opt_out and in opt_in" in problems["short_codes[0].keywords.opt_in"]


def test_bool_and_number_ranges() -> None:
    err = error_of(BASE + "messages: {ref16: maybe, max_parts: 0, expiry_hours: -1}\n")
    problems = {i.key: i.problem for i in err.issues}
    assert "true or false" in problems["messages.ref16"]
    assert "from 1 to 255" in problems["messages.max_parts"]
    assert "> 0" in problems["messages.expiry_hours"]


def test_all_errors_are_collected_in_line_order() -> None:
    err = error_of("timezone: Nowhere\nweb: {port: x}\nmessages: {max_parts: y}\n")
    assert [i.line for i in err.issues] == [1, 2, 3]
    assert len(str(err).splitlines()) == 3


def test_demo_references_are_checked() -> None:
    err = error_of(
        BASE
        + """\
demo:
  profiles:
    - {name: A, phone: "+15551230001"}
  conversations:
    - phone: "+15551230002"
      short_code: "55999"
      messages: [{from: them, text: hi}]
"""
    )
    problems = {i.key: i.problem for i in err.issues}
    assert "not one of demo.profiles" in problems["demo.conversations[0].phone"]
    assert "unknown short code '55999'" in problems["demo.conversations[0].short_code"]


def test_bad_phone_number() -> None:
    issue = only_issue("simulator:\n  handsets:\n    - number: '12'\n")
    assert (issue.line, issue.key) == (3, "simulator.handsets[0].number")
    assert "phone number" in issue.problem


def test_syntax_error_and_non_mapping() -> None:
    issue = only_issue("web: [1,\n")
    assert issue.key == "" and "not valid YAML" in issue.problem and issue.line is not None
    issue = only_issue("- a\n- b\n")
    assert issue.line == 1 and "mapping" in issue.problem


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml")
    assert info.value.line is None and "cannot read" in info.value.problem


def test_warnings_do_not_fail() -> None:
    config = parse(
        """\
        web: {bind: 0.0.0.0}
        modems: [{id: a, port: /dev/ttyUSB0}]
        short_codes: [{code: "1", name: S, modems: [a]}]
        """
    )
    keys = {w.key for w in config.warnings}
    assert keys == {"web.bind", "modems[0].port"}


# ---------------------------------------------------------------------------- the command


def run_check(path: Path) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    config_command.register(parser.add_subparsers())
    args = parser.parse_args(["config", "check", str(path)])
    out = io.StringIO()
    code = args.func(args, out=out)
    return code, out.getvalue()


def test_check_command_ok() -> None:
    code, out = run_check(DEMO)
    assert code == 0
    assert out.startswith(f"{DEMO}: OK\n")
    assert "modems: 3" in out and "55123 Support: support-a, support-b" in out
    assert "simulator: 3 modems, 10 handsets" in out


def test_check_command_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BASE + "web:\n  sesion_hours: 3\n  port: eighty\n")
    code, out = run_check(path)
    assert code == 1
    lines = out.splitlines()
    assert (
        lines[0] == f"{path} line 11, web.sesion_hours: unknown key; did you mean 'session_hours'?"
    )
    assert lines[1].startswith(f"{path} line 12, web.port: expected a whole number")
    assert lines[-1] == f"{path}: 2 errors"
