"""The rules of a configuration: checks that combine keys of one section, and checks across
sections (modem ids, pools, demo conversations). The schema says what each key is; this says
which combinations are wrong, with the key to blame."""

from __future__ import annotations

import difflib
from typing import Any

from yaml.nodes import Node

from .reader import Bad, Check, Context, Reported, child, join, unique
from .schema import (
    AgentConfig,
    DemoConfig,
    Keywords,
    MessagesConfig,
    ModemConfig,
    QuietHours,
    RateLimit,
    ShortCodeConfig,
    SimulatorConfig,
    WebConfig,
)


def check_web(ctx: Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    cert, key = v.get("tls_cert"), v.get("tls_key")
    if (cert is None) != (key is None):
        given, missing = ("tls_cert", "tls_key") if cert is not None else ("tls_key", "tls_cert")
        raise Bad(
            f"{given} is given without {missing}: name both the certificate and its key, or "
            "neither (tls_self_signed: true generates them)",
            nodes[given],
            join(path, given),
        )
    https = v.get("tls_self_signed", False) or v.get("tls_cert") is not None
    bind = v.get("bind", WebConfig.bind)
    if not https and bind not in ("127.0.0.1", "::1", "localhost"):
        ctx.warn(
            nodes.get("bind"),
            join(path, "bind"),
            "the web app listens beyond this machine without HTTPS, so passwords cross the "
            "network in clear; set tls_self_signed: true or name tls_cert and tls_key",
        )
    return v


def check_rate(ctx: Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    per_minute, per_day = v.get("per_minute"), v.get("per_day")
    if per_minute is not None and per_day is not None and per_day < per_minute:
        ctx.warn(nodes["per_day"], join(path, "per_day"), "smaller than per_minute")
    return v


def check_quiet(ctx: Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    if v["start"] == v["end"]:
        raise Bad(
            "start and end are the same, so the window is empty; remove quiet_hours for none",
            nodes["end"],
            join(path, "end"),
        )
    return v


def check_modem(ctx: Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    if not any(v.get(key) for key in ("imei", "iccid", "port")):
        raise Bad("a modem needs at least one of imei, iccid or port to be found by")
    if not v.get("imei") and not v.get("iccid"):
        ctx.warn(
            nodes["port"],
            join(path, "port"),
            "matched by port only: /dev/ttyUSBn names change across reboots; prefer imei "
            "(see `gateway modems`) or a /dev/serial/by-id path",
        )
    if "id" not in v:
        v["id"] = v.get("imei") or v.get("iccid") or v.get("label") or v["port"]
    return v


def check_replies_keywords(
    ctx: Context, path: str, v: dict[str, Any], nodes: dict[str, Node]
) -> dict:
    if "opt_out" in v and not v["opt_out"]:
        raise Bad(
            "expected at least one opt-out keyword (STOP must always work)",
            nodes["opt_out"],
            join(path, "opt_out"),
        )
    owner: dict[str, str] = {}
    defaults = Keywords()
    kinds = ("opt_out", "opt_out_all", "opt_in", "help", "oops")
    given = {w for kind in kinds if kind in v for w in v[kind]}
    yielding = {
        # A configuration written before opt_out_all existed ("opt_out: [STOP, STOPALL, ...]")
        # still loads and means what it says; and one that moves STOP to opt_out_all (the
        # law's wording) need not repeat the rest of opt_out.
        "opt_out_all": given,
        "opt_out": set(v.get("opt_out_all", ())),
    }
    for kind, taken in yielding.items():
        if kind not in v:
            kept = tuple(w for w in getattr(defaults, kind) if w not in taken)
            if kept != getattr(defaults, kind):
                v[kind] = kept
    for kind in kinds:
        for word in v.get(kind, getattr(defaults, kind)):
            if word in owner and owner[word] != kind:
                raise Bad(
                    f"keyword {word} is both in {owner[word]} and in {kind}",
                    nodes.get(kind),
                    join(path, kind),
                )
            owner[word] = kind
    return v


def check_short_code(ctx: Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    pool = v["modems"]
    for index, modem_id in enumerate(pool):
        if modem_id in pool[:index]:
            raise Bad(
                f"modem {modem_id!r} is listed twice",
                nodes["modems"].value[index],
                f"{join(path, 'modems')}[{index}]",
            )
    urls = [w.url for w in v.get("webhooks", ())]
    for index, url in enumerate(urls):
        if url in urls[:index]:
            raise Bad(
                f"webhook {url} is listed twice; give it every event it should get once",
                nodes["webhooks"].value[index],
                f"{join(path, 'webhooks')}[{index}].url",
            )
    default = v.get("default_modem")
    if default is not None and default not in pool:
        raise Bad(
            f"default_modem {default!r} is not in this short code's modems ({', '.join(pool)})",
            nodes["default_modem"],
            join(path, "default_modem"),
        )
    return v


def check_messages(ctx: Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    initial = v.get("retry_initial_seconds", MessagesConfig.retry_initial_seconds)
    maximum = v.get("retry_max_seconds", MessagesConfig.retry_max_seconds)
    if maximum < initial:
        key = "retry_max_seconds" if "retry_max_seconds" in nodes else "retry_initial_seconds"
        raise Bad(
            f"retry_max_seconds ({maximum:g}) is smaller than retry_initial_seconds ({initial:g})",
            nodes[key],
            join(path, key),
        )
    return v


def check_agent(ctx: Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    titles: set[str] = set()
    for index, canned in enumerate(v.get("canned_responses", ())):
        if canned.title in titles:
            raise Bad(
                f"title {canned.title!r} is used twice",
                nodes["canned_responses"].value[index],
                f"{join(path, 'canned_responses')}[{index}].title",
            )
        titles.add(canned.title)
    return v


def check_simulator(ctx: Context, path: str, v: dict[str, Any], nodes: dict[str, Node]) -> dict:
    problems = []
    for attr, what in (("imei", "IMEI"), ("iccid", "ICCID"), ("number", "number")):
        problems += unique(v.get("modems", ()), attr, nodes.get("modems"), "modems", what)
    problems += unique(v.get("handsets", ()), "number", nodes.get("handsets"), "handsets", "number")
    modem_numbers = {m.number for m in v.get("modems", ())}
    for index, handset in enumerate(v.get("handsets", ())):
        if handset.number in modem_numbers:
            problems.append(
                (
                    nodes["handsets"].value[index],
                    f"handsets[{index}].number",
                    f"{handset.number} is already a simulated modem's number",
                )
            )
    for node, key, problem in problems:
        ctx.error(node, join(path, key), problem)
    if problems:
        raise Reported
    return v


def check_references(
    ctx: Context, values: dict[str, Any], items: dict[str, Node], failed: set[str]
) -> None:
    """Checks across sections: modem ids, pools, demo conversations."""
    modems: tuple[ModemConfig, ...] = values.get("modems", ())
    codes: tuple[ShortCodeConfig, ...] = values.get("short_codes", ())
    if "modems" not in failed and modems:
        for attr, what in (("id", "id"), ("imei", "IMEI"), ("iccid", "ICCID"), ("port", "port")):
            for node, key, problem in unique(modems, attr, items["modems"], "modems", what):
                ctx.error(node, key, problem)
    if "modems" in failed or "short_codes" in failed:
        return  # an unreadable modem or short code would only give echoes of the same error

    known = {modem.id for modem in modems}
    owner: dict[str, tuple[int, str]] = {}
    codes_node = items.get("short_codes")
    for node, key, problem in unique(codes, "code", codes_node, "short_codes", "code"):
        ctx.error(node, key, problem)
    for node, key, problem in unique(codes, "name", codes_node, "short_codes", "name"):
        ctx.error(node, key, problem)
    for index, short in enumerate(codes):
        pool_node = child(codes_node.value[index], "modems")
        for position, modem_id in enumerate(short.modems):
            key = f"short_codes[{index}].modems[{position}]"
            node = pool_node.value[position] if pool_node is not None else None
            if modem_id not in known:
                close = difflib.get_close_matches(modem_id, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                listed = ", ".join(sorted(known)) or "none are configured"
                ctx.error(node, key, f"unknown modem {modem_id!r}{hint} (modem ids: {listed})")
            elif modem_id in owner and owner[modem_id][0] != index:
                ctx.error(
                    node,
                    key,
                    f"modem {modem_id!r} is already in short code {owner[modem_id][1]}; a "
                    "modem belongs to one short code, so that its inbound texts have one home",
                )
            else:
                owner[modem_id] = (index, short.code)
    if modems and not codes:
        node = items.get("short_codes", items.get("modems"))
        ctx.error(
            node,
            "short_codes",
            "modems are configured but no short code: add a short code whose modems list "
            "names them, or the gateway cannot send",
        )
    for index, modem in enumerate(modems):
        if codes and modem.id not in owner:
            ctx.warn(
                items["modems"].value[index],
                f"modems[{index}]",
                f"modem {modem.id!r} is in no short code's pool: it will receive but never send",
            )

    demo: DemoConfig | None = values.get("demo")
    if demo is None or "demo" in failed:
        return
    demo_node = items["demo"]
    profiles_node = child(demo_node, "profiles")
    for node, key, problem in unique(demo.profiles, "phone", profiles_node, "profiles", "phone"):
        ctx.error(node, f"demo.{key}", problem)
    phones = {profile.phone for profile in demo.profiles}
    code_names = {short.code for short in codes}
    conversations_node = child(demo_node, "conversations")
    for index, conversation in enumerate(demo.conversations):
        conv_node = conversations_node.value[index]
        key = f"demo.conversations[{index}]"
        if conversation.phone not in phones:
            ctx.error(
                child(conv_node, "phone"),
                f"{key}.phone",
                f"{conversation.phone} is not one of demo.profiles' phones",
            )
        if conversation.short_code not in code_names:
            listed = ", ".join(sorted(code_names)) or "none are configured"
            ctx.error(
                child(conv_node, "short_code"),
                f"{key}.short_code",
                f"unknown short code {conversation.short_code!r} (short codes: {listed})",
            )


# The check of each section, by its class (the reader looks them up while reading).
SECTION_CHECKS: dict[type, Check] = {
    WebConfig: check_web,
    RateLimit: check_rate,
    QuietHours: check_quiet,
    ModemConfig: check_modem,
    Keywords: check_replies_keywords,
    ShortCodeConfig: check_short_code,
    MessagesConfig: check_messages,
    AgentConfig: check_agent,
    SimulatorConfig: check_simulator,
}
