"""The schema of ``gateway.yaml``: one frozen dataclass per section, each key declared once,
with its type, its default and how it is read from the file (:func:`.reader.setting`).

The documented example is ``config/gateway.example.yaml``; the key reference is
``docs/config.md``. Checks that combine keys live in :mod:`.rules`.
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import values as v
from .errors import ConfigIssue
from .reader import (
    boolean,
    decimal,
    digits,
    file_path,
    integer,
    list_of,
    optional,
    section,
    setting,
    string_map,
    text,
    time_of_day,
)

DEFAULT_DATA_DIR = Path("/var/lib/gateway")


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    """The web app: where it listens, HTTPS, and login sessions."""

    bind: str = setting(v.host, "127.0.0.1")
    port: int = setting(integer(0, 65535), 8080)  # 0 = any free port (tests)
    tls_cert: Path | None = setting(optional(file_path), None)
    tls_key: Path | None = setting(optional(file_path), None)
    # Generate a self-signed certificate: into tls_cert/tls_key when named and missing, else
    # into data_dir.
    tls_self_signed: bool = setting(boolean, False)
    secret_key_file: Path | None = setting(file_path, None)  # the loader fills in data_dir/
    session_hours: int = setting(integer(1, 24 * 366), 12)
    # A login also ends after this many minutes without use (0: only session_hours counts).
    session_idle_minutes: int = setting(integer(0, 24 * 60 * 366), 60)

    @property
    def https(self) -> bool:
        """True when the web app serves HTTPS."""
        return self.tls_self_signed or self.tls_cert is not None


@dataclass(frozen=True, kw_only=True)
class ApiConfig:
    """The REST API under /api/v1: how many requests each token may make (a token bucket per
    token: ``burst`` at once, refilled at ``rate_per_minute``; 0 = no limit)."""

    rate_per_minute: int = setting(integer(0, 100_000), 120)
    burst: int = setting(integer(1, 10_000), 20)


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """How many messages a modem may send; None = no limit."""

    per_minute: int | None = setting(optional(integer(0)), None)
    per_day: int | None = setting(optional(integer(0)), None)


@dataclass(frozen=True, kw_only=True)
class QuietHours:
    """A daily window (in the config's timezone) in which a modem sends no bulk messages."""

    start: datetime.time = setting(time_of_day)
    end: datetime.time = setting(time_of_day)  # may be earlier than start: wraps midnight

    def contains(self, moment: datetime.time) -> bool:
        """True when ``moment`` (a local wall-clock time) falls inside the window."""
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True, kw_only=True)
class ModemConfig:
    """One modem the gateway should drive, matched by IMEI or ICCID (or, last resort, port)."""

    # The name short codes use; the rules default it to imei, iccid, label or port.
    id: str = setting(text(), required=False)
    imei: str | None = setting(optional(digits(14, 16, "an IMEI")), None)
    iccid: str | None = setting(optional(digits(18, 22, "an ICCID")), None)
    port: str | None = setting(optional(text()), None)
    pin: str | None = setting(optional(v.pin), None)
    label: str | None = setting(optional(text()), None)
    baudrate: int = setting(integer(1), 115200)
    rtscts: bool = setting(boolean, False)
    status_reports: bool = setting(boolean, True)
    smsc: str | None = setting(optional(v.phone), None)  # E.164
    rate_limit: RateLimit = setting(section(RateLimit), factory=RateLimit)
    quiet_hours: QuietHours | None = setting(optional(section(QuietHours)), None)


DEFAULT_OPT_OUT_REPLY = (
    "You are unsubscribed from {name} and will get no more messages. Reply START to resubscribe."
)
DEFAULT_OPT_IN_REPLY = (
    "You are subscribed to {name} again. Reply HELP for help, STOP to unsubscribe."
)
DEFAULT_OPT_OUT_ALL_REPLY = (
    "You are unsubscribed from all our numbers and will get no more messages."
    " Reply START to {code} to resubscribe to {name}."
)
DEFAULT_HELP_REPLY = "{name}: reply STOP to unsubscribe, START to subscribe again."
DEFAULT_OOPS_REPLY = "Welcome back to {name}: your STOP was undone. Reply STOP to unsubscribe."
REPLY_PLACEHOLDERS = v.REPLY_PLACEHOLDERS


@dataclass(frozen=True, kw_only=True)
class Replies:
    """Automatic answers to keywords; ``{name}`` and ``{code}`` are the short code's."""

    opt_out: str = setting(v.reply, DEFAULT_OPT_OUT_REPLY)
    opt_in: str = setting(v.reply, DEFAULT_OPT_IN_REPLY)
    opt_out_all: str = setting(v.reply, DEFAULT_OPT_OUT_ALL_REPLY)
    help: str = setting(v.reply, DEFAULT_HELP_REPLY)
    oops: str = setting(v.reply, DEFAULT_OOPS_REPLY)


@dataclass(frozen=True, kw_only=True)
class Keywords:
    """Inbound keywords, upper case with spaces removed (matching is case/space-insensitive).
    ``opt_out`` opts out of this short code, ``opt_out_all`` of every short code (put STOP
    there where the law says a STOP ends every message from the sender)."""

    opt_out: tuple[str, ...] = setting(
        list_of(v.keyword), ("STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
    )
    opt_out_all: tuple[str, ...] = setting(list_of(v.keyword), ("STOPALL", "UNSUBSCRIBEALL"))
    opt_in: tuple[str, ...] = setting(list_of(v.keyword), ("START", "UNSTOP"))
    help: tuple[str, ...] = setting(list_of(v.keyword), ("HELP", "INFO"))
    oops: tuple[str, ...] = setting(list_of(v.keyword), ("OOPS",))


@dataclass(frozen=True, kw_only=True)
class WebhookConfig:
    """Where a short code's events are POSTed (docs/webhooks.md): the URL, which events, and
    the secret that signs each POST."""

    url: str = setting(v.webhook_url)
    events: tuple[str, ...] = setting(
        list_of(text(choices=v.WEBHOOK_EVENTS), min_items=1), v.WEBHOOK_EVENTS
    )
    secret: str = setting(v.webhook_secret)


@dataclass(frozen=True, kw_only=True)
class ShortCodeConfig:
    """A named sender backed by a pool of modems."""

    code: str = setting(v.short_code_text)
    name: str = setting(text())
    modems: tuple[str, ...] = setting(list_of(text(), min_items=1))  # modem ids
    default_modem: str | None = setting(optional(text()), None)  # one of modems
    replies: Replies = setting(section(Replies), factory=Replies)
    keywords: Keywords = setting(section(Keywords), factory=Keywords)
    webhooks: tuple[WebhookConfig, ...] = setting(list_of(section(WebhookConfig)), ())

    def reply(self, kind: Literal["opt_out", "opt_out_all", "opt_in", "help", "oops"]) -> str:
        """The reply text of ``kind`` with the short code's name and code filled in."""
        return getattr(self.replies, kind).format(name=self.name, code=self.code)


@dataclass(frozen=True, kw_only=True)
class MessagesConfig:
    """Limits and timings of messages."""

    max_parts: int = setting(integer(1, 255), 10)
    expiry_hours: float = setting(decimal(0, above=True), 24.0)
    ref16: bool = setting(boolean, False)
    retry_initial_seconds: float = setting(decimal(0, above=True), 30.0)
    retry_max_seconds: float = setting(decimal(0, above=True), 900.0)
    reassembly_timeout_minutes: float = setting(decimal(0, above=True), 60.0)
    # TP-VP requested from the network; None = its default. The relative form reaches from 5
    # minutes to 63 weeks.
    validity_minutes: int | None = setting(optional(integer(5, 63 * 7 * 24 * 60)), None)


@dataclass(frozen=True, kw_only=True)
class RoutingConfig:
    """How a profile's messages are routed within a short code's pool."""

    sticky_grace_minutes: float = setting(decimal(0), 30.0)
    # A modem whose sends fail this many times in a row by its own fault (SIM, network, modem
    # errors) leaves routing; it is checked after probe_seconds, then after twice as long each
    # time the check or its trial message fails, up to probe_max_seconds.
    failing_after: int = setting(integer(1), 3)
    probe_seconds: float = setting(decimal(0, above=True), 30.0)
    probe_max_seconds: float = setting(decimal(0, above=True), 600.0)


@dataclass(frozen=True, kw_only=True)
class RetentionConfig:
    """How long things are kept, and the nightly backups."""

    messages_days: int | None = setting(optional(integer(1)), None)  # None = keep forever
    raw_pdus_days: int = setting(integer(1), 90)
    nightly_backups: int = setting(integer(0), 7)  # 0 = no nightly backup
    backup_time: datetime.time = setting(time_of_day, datetime.time(3, 30))


@dataclass(frozen=True, kw_only=True)
class ManagerConfig:
    """How the modem manager finds ports and watches modems."""

    scan: tuple[str, ...] = setting(
        list_of(v.scan_pattern), ("/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*")
    )
    heartbeat_seconds: float = setting(decimal(0, above=True), 60.0)
    sweep_seconds: float = setting(decimal(0, above=True), 300.0)
    reconnect_max_seconds: float = setting(decimal(0, above=True), 60.0)
    command_timeout_seconds: float = setting(decimal(0, above=True), 10.0)
    # The answer to a sent part comes after the network's: longer than a command's. A modem
    # that hangs mid-send holds that message this long before it goes to another modem.
    send_timeout_seconds: float = setting(decimal(0, above=True), 60.0)


@dataclass(frozen=True, kw_only=True)
class WebhookDeliveryConfig:
    """How webhooks are delivered (every short code's): timeouts, backoff, and the bounds that
    keep a receiver that is down for days from filling the card (docs/webhooks.md)."""

    connect_timeout_seconds: float = setting(decimal(0, above=True, high=60), 5.0)
    read_timeout_seconds: float = setting(decimal(0, above=True, high=300), 10.0)
    # After a failed POST the webhook waits retry_initial_seconds, doubling (with jitter) up
    # to retry_max_seconds, before its next attempt.
    retry_initial_seconds: float = setting(decimal(0, above=True), 10.0)
    retry_max_seconds: float = setting(decimal(0, above=True), 600.0)
    # A delivery goes to the dead-letter list after this many failed attempts, or this old.
    max_attempts: int = setting(integer(1), 20)
    max_age_hours: float = setting(decimal(0, above=True), 72.0)
    # Per webhook: a longer backlog sends its oldest deliveries to the dead-letter list, and
    # a longer dead-letter list loses its oldest (counted; shown in Settings).
    max_pending: int = setting(integer(1), 10_000)
    max_dead: int = setting(integer(0), 10_000)


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    """``/metrics`` for Prometheus: read with an API token, or from the gateway itself
    (loopback) when ``allow_loopback`` is on."""

    enabled: bool = setting(boolean, True)
    # A reverse proxy on the same box makes every request come from loopback: keep this off
    # behind one.
    allow_loopback: bool = setting(boolean, False)


@dataclass(frozen=True, kw_only=True)
class CannedResponse:
    """A prepared answer the Agent View offers."""

    title: str = setting(text())
    text: str = setting(text())


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """The Agent View: which inbound words flag a conversation urgent, and canned answers."""

    urgent_words: tuple[str, ...] = setting(
        list_of(v.word), ("urgent", "emergency", "asap", "help")
    )  # lower case
    canned_responses: tuple[CannedResponse, ...] = setting(list_of(section(CannedResponse)), ())


# Modem firmwares the simulator imitates (the same list as gateway.sim.families.FAMILIES;
# a test keeps them equal, and config does not import the simulator).
SIM_FAMILIES = ("generic", "huawei", "simcom", "quectel", "sierra", "ublox")


@dataclass(frozen=True, kw_only=True)
class SimModemConfig:
    """A modem of the built-in simulator."""

    imei: str = setting(digits(14, 16, "an IMEI"))
    iccid: str | None = setting(optional(digits(18, 22, "an ICCID")), None)
    number: str = setting(v.phone)  # E.164, the SIM's own number
    family: str = setting(text(choices=SIM_FAMILIES), "generic")
    label: str | None = setting(optional(text()), None)
    command_latency: float = setting(decimal(0), 0.0)
    send_latency: float = setting(decimal(0), 0.0)
    storage_capacity: int = setting(integer(1, 255), 30)


@dataclass(frozen=True, kw_only=True)
class SimHandsetConfig:
    """A phone on the simulated network."""

    number: str = setting(v.phone)  # E.164
    name: str | None = setting(optional(text()), None)


@dataclass(frozen=True, kw_only=True)
class SimulatorConfig:
    """Run the serial simulator inside the daemon (no hardware needed)."""

    dir: Path | None = setting(optional(file_path), None)  # the loader fills in data_dir/sim
    # None = no control server; 0 = any free port.
    control_port: int | None = setting(optional(integer(0, 65535)), None)
    seed: int = setting(integer(), 1)
    # Seconds from a delivery to its status report; None: 1-3 s at random, as on real networks.
    status_report_delay: float | None = setting(optional(decimal(0)), None)
    # True: a text to a number no handset has creates a handset for it (load tests). False: it
    # fails as on a real network, with a "not obtainable" status report.
    auto_handsets: bool = setting(boolean, False)
    modems: tuple[SimModemConfig, ...] = setting(list_of(section(SimModemConfig)), ())
    handsets: tuple[SimHandsetConfig, ...] = setting(list_of(section(SimHandsetConfig)), ())


@dataclass(frozen=True, kw_only=True)
class DemoProfile:
    """A contact created when the demo starts."""

    name: str = setting(text())
    phone: str = setting(v.phone)  # E.164
    status: Literal["active", "inactive"] = setting(text(choices=("active", "inactive")), "active")
    opted_out: bool = setting(boolean, False)
    custom: dict[str, str] = setting(string_map, factory=dict)


@dataclass(frozen=True, kw_only=True)
class DemoMessage:
    """One message of a demo conversation; YAML key ``from`` is ``sender`` here."""

    sender: Literal["us", "them"] = setting(text(choices=("us", "them")), key="from")
    text: str = setting(text())

    @property
    def outbound(self) -> bool:
        """True for a message the gateway sent."""
        return self.sender == "us"


@dataclass(frozen=True, kw_only=True)
class DemoConversation:
    """A conversation put into the store when the demo starts."""

    phone: str = setting(v.phone)  # E.164, one of the demo profiles
    short_code: str = setting(v.short_code_text)  # a short code's code
    messages: tuple[DemoMessage, ...] = setting(list_of(section(DemoMessage), min_items=1))


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Demo data: an admin user, profiles and conversations."""

    admin_user: str = setting(text(), "admin")
    admin_password: str = setting(text(), "demo1234")
    profiles: tuple[DemoProfile, ...] = setting(list_of(section(DemoProfile)), ())
    conversations: tuple[DemoConversation, ...] = setting(list_of(section(DemoConversation)), ())


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole configuration of one gateway. The keys are read in this order: region and
    data_dir first, since phone numbers and default paths depend on them."""

    default_region: str = setting(v.region, "US")
    data_dir: Path = setting(file_path, DEFAULT_DATA_DIR)
    timezone: str = setting(v.timezone, "UTC")
    web: WebConfig = setting(section(WebConfig), factory=WebConfig)
    api: ApiConfig = setting(section(ApiConfig), factory=ApiConfig)
    modems: tuple[ModemConfig, ...] = setting(list_of(section(ModemConfig)), ())
    short_codes: tuple[ShortCodeConfig, ...] = setting(list_of(section(ShortCodeConfig)), ())
    messages: MessagesConfig = setting(section(MessagesConfig), factory=MessagesConfig)
    routing: RoutingConfig = setting(section(RoutingConfig), factory=RoutingConfig)
    retention: RetentionConfig = setting(section(RetentionConfig), factory=RetentionConfig)
    modem_manager: ManagerConfig = setting(section(ManagerConfig), factory=ManagerConfig)
    agent: AgentConfig = setting(section(AgentConfig), factory=AgentConfig)
    webhook_delivery: WebhookDeliveryConfig = setting(
        section(WebhookDeliveryConfig), factory=WebhookDeliveryConfig
    )
    metrics: MetricsConfig = setting(section(MetricsConfig), factory=MetricsConfig)
    simulator: SimulatorConfig | None = setting(optional(section(SimulatorConfig)), None)
    demo: DemoConfig | None = setting(optional(section(DemoConfig)), None)
    source: Path | None = None  # the file this was loaded from (not a key of the file)
    warnings: tuple[ConfigIssue, ...] = ()  # non-fatal remarks, each with file, line and key

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        """The configured timezone (quiet hours and backup time are in it)."""
        return zoneinfo.ZoneInfo(self.timezone)

    def modem(self, modem_id: str) -> ModemConfig:
        """The modem with this id; KeyError if there is none."""
        for modem in self.modems:
            if modem.id == modem_id:
                return modem
        raise KeyError(f"no modem with id {modem_id!r} in the configuration")

    def short_code(self, code: str) -> ShortCodeConfig:
        """The short code with this code; KeyError if there is none."""
        for short in self.short_codes:
            if short.code == code:
                return short
        raise KeyError(f"no short code {code!r} in the configuration")

    def short_code_of_modem(self, modem_id: str) -> ShortCodeConfig | None:
        """The short code whose pool holds this modem (a modem is in at most one)."""
        for short in self.short_codes:
            if modem_id in short.modems:
                return short
        return None
