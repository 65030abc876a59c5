"""Keywords per short code and the opt-in paths they start.

A team keyword (``JOIN``, ``SCHOOL``...) belongs to one short code and is matched on the first
word of a text, ignoring case and accents. Texting it can:

- answer with an automatic reply;
- subscribe the person to the short code (when the keyword names a campaign, or asks for a
  double opt-in): with a **double opt-in** the person must first reply ``Y`` within the
  keyword's time limit, and nothing is subscribed before that (an expiry is recorded);
- walk a short **path of questions** that fill profile fields ("Which school?" fills the
  custom field ``school``), each answer checked against its choices, an invalid one answered
  with the question's own reply, and a way out (the keyword's exit word, or STOP).

STOP, START and HELP keep precedence (messaging/inbound.py classifies them first; a STOP also
ends an open path). A text that is neither a keyword nor the answer a path waits for goes to the
Inbox as before. A path's state lives in the store (``keyword_paths``), so a restart in the
middle changes nothing; an answer that arrived while the gateway was down is read from the SIM
when it comes back and takes the same way in, judged by the time the network took it.

:class:`KeywordBook` manages keywords (Settings and ``gateway keyword``); :class:`OptinPaths`
handles inbound texts, inside Inbound's transaction.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..config import Config, ShortCodeConfig
from ..modem import text as smstext
from ..modem.errors import CodecError
from ..store import KeywordExists, NewKeyword, Store
from ..store.keywords import questions_of
from ..store.profiles import custom_fields
from ..store.states import PathState
from ..store.times import iso, now, parse
from . import keywords
from .outbound import Outbox, SendRefused
from .profiles import MAX_FIELD_VALUE, field_name_problem
from .subscriptions import OptSource, Subscriptions

__all__ = [
    "CONFIRM_WORDS",
    "KeywordBook",
    "KeywordInvalid",
    "OptinPaths",
    "PathPlan",
    "Question",
]

log = logging.getLogger(__name__)

CONFIRM_WORDS = frozenset({"Y", "YES"})  # the double opt-in's answer, after squash()
MAX_WORD = 30
MAX_QUESTIONS = 10
MAX_CHOICES = 30
MIN_LIMIT_MINUTES = 1
MAX_LIMIT_MINUTES = 30 * 24 * 60
DEFAULT_LIMIT_MINUTES = 24 * 60
EXPIRY_GRACE = timedelta(minutes=5)

# Message kinds of inbound texts a keyword handled (``messages.kind``): not for the Inbox.
KIND_KEYWORD = "keyword"
KIND_CONFIRM = "confirm"
KIND_ANSWER = "answer"


class KeywordInvalid(ValueError):
    """A keyword cannot be saved as given; ``errors`` maps each field to what is wrong."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class KeywordNotFound(LookupError):
    """No live keyword with this word on this short code."""


@dataclass(frozen=True)
class Question:
    """One question of a path: the custom field its answer fills, what is asked, the answers
    allowed (none: any text) and the reply to an answer that is not one of them."""

    field: str
    ask: str
    choices: tuple[str, ...] = ()
    invalid: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "ask": self.ask,
            "choices": list(self.choices),
            "invalid": self.invalid,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Question:
        return cls(
            field=str(data.get("field", "")),
            ask=str(data.get("ask", "")),
            choices=tuple(str(c) for c in data.get("choices") or ()),
            invalid=str(data.get("invalid") or ""),
        )

    def invalid_reply(self) -> str:
        """What an answer that is not one of the choices gets back."""
        if self.invalid:
            return self.invalid
        return f"Please answer with one of: {', '.join(self.choices)}. {self.ask}"

    def accept(self, answer: str) -> str | None:
        """The value to store for ``answer`` (the choice as written, when there are choices),
        or None when it is not acceptable."""
        answer = " ".join(answer.split())  # a line break typed in an answer is a space
        if not answer or len(answer) > MAX_FIELD_VALUE or not answer.isprintable():
            return None
        if not self.choices:
            return answer
        wanted = keywords.squash(answer)
        for choice in self.choices:
            if keywords.squash(choice) == wanted:
                return choice
        return None


def limit_words(minutes: int) -> str:
    """A time limit in words: "1 day", "2 hours", "90 minutes"."""
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days > 1 else ''}"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours > 1 else ''}"
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


def _standard_prompt(sc: ShortCodeConfig, minutes: int) -> str:
    """The text asking for Y when the keyword gives none."""
    return (
        f"{sc.name}: reply Y within {limit_words(minutes)} to confirm your subscription."
        " Reply STOP to opt out."
    )


def _expiry(keyword: Mapping[str, Any]) -> str:
    """When a path step that starts now runs out: the keyword's time limit from now (from
    when the gateway answers, so a text read late still leaves the person the whole time)."""
    return iso(now() + timedelta(minutes=int(keyword["time_limit_minutes"])))


def keyword_json(row: sqlite3.Row) -> dict[str, Any]:
    """A keyword as the CLI and the API show it (a stable interface: docs/cli.md)."""
    keys = row.keys()
    return {
        "id": row["id"],
        "short_code": row["short_code"],
        "word": row["word"],
        "reply": row["reply"],
        "campaign": row["campaign"] if "campaign" in keys else None,
        "double_opt_in": bool(row["double_opt_in"]),
        "confirm_prompt": row["confirm_prompt"],
        "time_limit_minutes": row["time_limit_minutes"],
        "questions": questions_of(row),
        "done_reply": row["done_reply"],
        "exit_word": row["exit_word"],
        "exit_reply": row["exit_reply"],
        "created_at": row["created_at"],
        "created_by": row["created_by"],
        **{k: row[k] for k in ("started", "open", "done") if k in keys},
    }


class KeywordBook:
    """Add, list and remove keywords, checked: the Settings page and ``gateway keyword``."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store

    def _sendable(self, text: str) -> str | None:
        """What is wrong with ``text`` as an automatic reply, or None."""
        limits = self.config.messages
        try:
            smstext.analyze(text, ref16=limits.ref16, max_parts=limits.max_parts).check()
        except CodecError as exc:
            return getattr(exc, "why", str(exc))
        return None

    def _reserved(self, sc: ShortCodeConfig) -> dict[str, str]:
        """The words of ``sc`` a keyword may not take, with what they already do."""
        kw = sc.keywords
        taken: dict[str, str] = {}
        for kind, words in (
            ("an opt-out keyword", kw.opt_out),
            ("an opt-out-of-all keyword", kw.opt_out_all),
            ("an opt-in keyword", kw.opt_in),
            ("a help keyword", kw.help),
            ("the undo keyword", kw.oops),
        ):
            for w in words:
                taken[keywords.squash(w)] = kind
        for w in CONFIRM_WORDS:
            taken[w] = "the double opt-in's answer"
        return taken

    def add(
        self,
        *,
        short_code: str,
        word: str,
        reply: str,
        actor: str,
        campaign: str | None = None,
        double_opt_in: bool = False,
        confirm_prompt: str = "",
        time_limit_minutes: int = DEFAULT_LIMIT_MINUTES,
        questions: Sequence[Question] = (),
        done_reply: str = "",
        exit_word: str = "EXIT",
        exit_reply: str = "",
    ) -> sqlite3.Row:
        """Check and store a keyword; :class:`KeywordInvalid` names every field that is wrong
        (all at once)."""
        checked = self._checked(
            short_code=short_code,
            word=word,
            reply=reply,
            campaign=campaign,
            double_opt_in=double_opt_in,
            confirm_prompt=confirm_prompt,
            time_limit_minutes=time_limit_minutes,
            questions=questions,
            done_reply=done_reply,
            exit_word=exit_word,
            exit_reply=exit_reply,
            actor=actor,
        )
        with self.store.db.tx():
            try:
                keyword_id = self.store.keywords.add(self._with_campaign(checked, actor))
            except KeywordExists as exc:  # added by another request a moment ago
                raise KeywordInvalid({"word": str(exc).removeprefix("word: ")}) from exc
            self.store.audit.add(
                "keyword.add",
                actor=actor,
                short_code=checked.short_code,
                word=checked.word,
                id=keyword_id,
            )
        row = self.store.keywords.get(keyword_id)
        assert row is not None
        return row

    def update(
        self,
        keyword_id: int,
        *,
        reply: str,
        actor: str,
        campaign: str | None = None,
        double_opt_in: bool = False,
        confirm_prompt: str = "",
        time_limit_minutes: int = DEFAULT_LIMIT_MINUTES,
        questions: Sequence[Question] = (),
        done_reply: str = "",
        exit_word: str = "EXIT",
        exit_reply: str = "",
    ) -> sqlite3.Row:
        """Change what a live keyword does (its word and short code stay: they are what people
        text). Open paths go on with the new texts and questions; one already past the last
        question ends. :class:`KeywordNotFound`, or :class:`KeywordInvalid` as for :meth:`add`."""
        old = self.store.keywords.get(keyword_id)
        if old is None or old["removed_at"] is not None:
            raise KeywordNotFound(f"there is no keyword with id {keyword_id}")
        try:
            sc = self.config.short_code(old["short_code"])
        except KeyError:
            raise KeywordInvalid(
                {"short_code": f"short code {old['short_code']} is no longer configured"}
            ) from None
        if confirm_prompt.strip() == _standard_prompt(sc, int(old["time_limit_minutes"])):
            confirm_prompt = ""  # the standard one follows a changed time limit
        checked = self._checked(
            short_code=sc.code,
            word=old["word"],
            reply=reply,
            campaign=campaign,
            double_opt_in=double_opt_in,
            confirm_prompt=confirm_prompt,
            time_limit_minutes=time_limit_minutes,
            questions=questions,
            done_reply=done_reply,
            exit_word=exit_word,
            exit_reply=exit_reply,
            actor=actor,
            keyword_id=keyword_id,
        )
        with self.store.db.tx():
            self.store.keywords.update(keyword_id, self._with_campaign(checked, actor))
            self.store.audit.add(
                "keyword.update",
                actor=actor,
                short_code=checked.short_code,
                word=checked.word,
                id=keyword_id,
            )
        row = self.store.keywords.get(keyword_id)
        assert row is not None
        return row

    def _with_campaign(self, k: NewKeyword, actor: str) -> NewKeyword:
        """``k`` with the id of its campaign (made when it is new), inside the caller's
        transaction."""
        if k.campaign is None:
            return k
        return dataclasses.replace(
            k, campaign_id=self.store.keywords.campaign_id_for(k.campaign, actor)
        )

    def _checked(
        self,
        *,
        short_code: str,
        word: str,
        reply: str,
        campaign: str | None,
        double_opt_in: bool,
        confirm_prompt: str,
        time_limit_minutes: int,
        questions: Sequence[Question],
        done_reply: str,
        exit_word: str,
        exit_reply: str,
        actor: str,
        keyword_id: int | None = None,
    ) -> NewKeyword:
        """Every field checked (all errors at once, :class:`KeywordInvalid`); ``keyword_id``
        is the keyword being changed, whose own word is not a duplicate."""
        errors: dict[str, str] = {}
        try:
            sc = self.config.short_code(short_code)
        except KeyError:
            known = ", ".join(s.code for s in self.config.short_codes) or "none"
            raise KeywordInvalid(
                {"short_code": f"unknown short code {short_code!r} (known: {known})"}
            ) from None
        word = word.strip()
        key = keywords.squash(word)
        reserved = self._reserved(sc)
        if not key:
            errors["word"] = "a keyword needs at least one letter or digit"
        elif len(word.split()) > 1 or keywords.first_word(word) != key:
            errors["word"] = (
                f"{word!r}: a keyword is one word (it is matched on a text's first word)"
            )
        elif len(word) > MAX_WORD:
            errors["word"] = f"at most {MAX_WORD} characters ({len(word)} given)"
        elif key in reserved:
            errors["word"] = f"{word!r} is {reserved[key]} of {sc.code}; choose another word"
        reply = reply.strip()
        if not reply:
            errors["reply"] = "the automatic reply is empty"
        elif problem := self._sendable(reply):
            errors["reply"] = problem
        campaign = (campaign or "").strip() or None
        if campaign is not None and (len(campaign) > 100 or not campaign.isprintable()):
            errors["campaign"] = "a campaign name is 1-100 printable characters"
        if not MIN_LIMIT_MINUTES <= time_limit_minutes <= MAX_LIMIT_MINUTES:
            errors["time_limit_minutes"] = (
                f"between {MIN_LIMIT_MINUTES} and {MAX_LIMIT_MINUTES} minutes (30 days)"
            )
        confirm_prompt = confirm_prompt.strip()
        if double_opt_in and not confirm_prompt:
            confirm_prompt = _standard_prompt(sc, time_limit_minutes)
        if confirm_prompt and (problem := self._sendable(confirm_prompt)):
            errors["confirm_prompt"] = problem
        checked: list[dict[str, Any]] = []
        if len(questions) > MAX_QUESTIONS:
            errors["questions"] = f"at most {MAX_QUESTIONS} questions ({len(questions)} given)"
        for n, q in enumerate(questions[:MAX_QUESTIONS], start=1):
            field = q.field.strip()
            problem = field_name_problem(field)
            ask = q.ask.strip()
            choices = tuple(c.strip() for c in q.choices if c.strip())
            if problem:
                errors[f"question_{n}"] = f"question {n}: field {problem}"
            elif not ask:
                errors[f"question_{n}"] = f"question {n}: the question is empty"
            elif problem := self._sendable(ask):
                errors[f"question_{n}"] = f"question {n}: {problem}"
            elif len(choices) > MAX_CHOICES:
                errors[f"question_{n}"] = f"question {n}: at most {MAX_CHOICES} choices"
            elif len({keywords.squash(c) for c in choices}) != len(choices):
                errors[f"question_{n}"] = (
                    f"question {n}: two choices read the same (case and accents are ignored)"
                )
            else:
                checked.append(Question(field, ask, choices, q.invalid.strip()).to_json())
        exit_word = exit_word.strip() or "EXIT"
        exit_key = keywords.squash(exit_word)
        if checked:
            if not exit_key or len(exit_word.split()) > 1:
                errors["exit_word"] = "the way out is one word, such as EXIT"
            elif exit_key in reserved and reserved[exit_key] != "an opt-out keyword":
                errors["exit_word"] = f"{exit_word!r} is {reserved[exit_key]} of {sc.code}"
            elif exit_key == key:
                errors["exit_word"] = "the way out must differ from the keyword itself"
        done_reply = done_reply.strip()
        exit_reply = exit_reply.strip()
        for name, value in (("done_reply", done_reply), ("exit_reply", exit_reply)):
            if value and (problem := self._sendable(value)):
                errors[name] = problem
        if not errors:
            same = self.store.keywords.find(sc.code, key)
            if same is not None and same["id"] != keyword_id:
                errors["word"] = f"short code {sc.code} already has the keyword {word!r}"
        if errors:
            raise KeywordInvalid(errors)
        return NewKeyword(
            short_code=sc.code,
            word=word.upper(),
            match_key=key,
            reply=reply,
            campaign=campaign,
            double_opt_in=double_opt_in,
            confirm_prompt=confirm_prompt if double_opt_in else "",
            time_limit_minutes=time_limit_minutes,
            questions=tuple(checked),
            done_reply=done_reply,
            exit_word=exit_word.upper(),
            exit_reply=exit_reply,
            created_by=actor,
        )

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """The control socket's ``keyword`` op (``gateway keyword``): see :func:`control_reply`."""
        return control_reply(self, request)

    def live(self, short_code: str | None = None) -> list[sqlite3.Row]:
        """The live keywords (of one short code), with their counts of paths."""
        return self.store.keywords.live(short_code)

    def remove(self, *, short_code: str, word: str, actor: str) -> sqlite3.Row:
        """Remove the live keyword ``word`` of ``short_code`` (its open paths are cancelled);
        :class:`KeywordNotFound` when there is none. Returns the removed row."""
        row = self.store.keywords.find(short_code.strip(), keywords.squash(word))
        if row is None:
            raise KeywordNotFound(f"short code {short_code} has no keyword {word!r}")
        return self.remove_id(row["id"], actor=actor)

    def remove_id(self, keyword_id: int, *, actor: str) -> sqlite3.Row:
        """Remove a live keyword by id (the Settings page's button)."""
        row = self.store.keywords.get(keyword_id)
        if row is None or row["removed_at"] is not None:
            raise KeywordNotFound(f"there is no keyword with id {keyword_id}")
        with self.store.db.tx():
            self.store.keywords.remove(keyword_id)
            self.store.audit.add(
                "keyword.remove",
                actor=actor,
                short_code=row["short_code"],
                word=row["word"],
                id=keyword_id,
            )
        return row


@dataclass(frozen=True)
class PathPlan:
    """What an inbound text is to the keywords of its short code, decided before the message
    is stored (its ``kind`` goes with it): the start of ``keyword``, or a step of ``path``."""

    kind: str  # KIND_KEYWORD, KIND_CONFIRM or KIND_ANSWER
    at: datetime  # when the network took the text (or the gateway read it, if earlier): the
    # time an open path's limit is compared with
    keyword: sqlite3.Row | None = None
    path: sqlite3.Row | None = None
    body: str = ""


class OptinPaths:
    """Runs keywords and paths for Inbound (called inside its transaction, so a text, the
    path's step and the replies it queues are committed together or not at all)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        outbox: Outbox,
        subscriptions: Subscriptions,
        *,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.outbox = outbox
        self.subscriptions = subscriptions
        # Wakes the housekeeper, so that it records the expiry of a path that starts (or
        # waits again) at its time, not at its next chore.
        self._wake = wake or (lambda: None)

    # -- deciding ------------------------------------------------------------------------

    def plan(
        self, profile: Mapping[str, Any], sc: ShortCodeConfig, body: str, at: datetime
    ) -> PathPlan | None:
        """What ``body`` (a complete text that is not STOP/START/HELP/OOPS) from ``profile``
        does here: a step of its open path on ``sc``, the start of a keyword, or None (a reply
        for the Inbox). A path whose time ran out before ``at`` is recorded as expired first.
        An inactive profile's texts are all for the team: no text may go to it, so no path
        could ask it anything."""
        if profile["status"] != "active":
            return None
        profile_id = int(profile["id"])
        path = self.store.keyword_paths.open_for(profile_id, sc.code)
        if path is not None and parse(path["expires_at"]) <= at:
            self.store.keyword_paths.move(path["id"], PathState.EXPIRED, PathState(path["state"]))
            log.info("keyword path %d (%s) expired", path["id"], path["word"])
            path = None
        state = path["state"] if path is not None else None
        if state == PathState.CONFIRMING and keywords.squash(body) in CONFIRM_WORDS:
            return PathPlan(KIND_CONFIRM, at, path=path, body=body)
        word = keywords.first_word(body)
        keyword = self.store.keywords.find(sc.code, word) if word else None
        if state == PathState.ASKING and keyword is None:
            # Every text is the answer (or the way out), unless it starts a keyword.
            return PathPlan(KIND_ANSWER, at, path=path, body=body)
        if keyword is None:
            return None
        return PathPlan(KIND_KEYWORD, at, keyword=keyword, body=body)

    # -- acting --------------------------------------------------------------------------

    def act(self, plan: PathPlan, profile_id: int, sc: ShortCodeConfig, message_id: int) -> None:
        """Carry out ``plan`` for the stored message ``message_id``."""
        if plan.kind == KIND_KEYWORD:
            assert plan.keyword is not None
            self._start(plan.keyword, profile_id, sc, message_id)
        elif plan.kind == KIND_CONFIRM:
            assert plan.path is not None
            self._confirm(plan.path, profile_id, sc, message_id)
        else:
            assert plan.path is not None
            self._answer(plan.path, profile_id, sc, plan.body)

    def _subscribes(self, kw: Mapping[str, Any]) -> bool:
        return kw["campaign_id"] is not None or bool(kw["double_opt_in"])

    def _start(
        self, kw: sqlite3.Row, profile_id: int, sc: ShortCodeConfig, message_id: int
    ) -> None:
        expires = _expiry(kw)
        self.store.db.after_commit(self._wake)
        questions = [Question.from_json(q) for q in questions_of(kw)]
        paths = self.store.keyword_paths
        if kw["double_opt_in"]:
            paths.start(profile_id, sc.code, kw["id"], PathState.CONFIRMING, expires)
            self._send(profile_id, sc, kw["confirm_prompt"], kw["campaign_id"])
            return
        if self._subscribes(kw):
            by = OptSource.by_keyword(sc.code, message_id)
            self.subscriptions.subscribe(profile_id, by, short_code=sc.code)
        self._send(profile_id, sc, kw["reply"], kw["campaign_id"])
        if questions:
            paths.start(profile_id, sc.code, kw["id"], PathState.ASKING, expires)
            self._send(profile_id, sc, questions[0].ask, kw["campaign_id"])
        else:
            # Nothing to wait for: recorded all the same, so the keyword's counts are true.
            paths.start(profile_id, sc.code, kw["id"], PathState.DONE, iso(now()))

    def _confirm(
        self,
        path: sqlite3.Row,
        profile_id: int,
        sc: ShortCodeConfig,
        message_id: int,
    ) -> None:
        questions = [Question.from_json(q) for q in questions_of(path)]
        new = PathState.ASKING if questions else PathState.DONE
        expires = _expiry(path)
        self.store.db.after_commit(self._wake)
        if not self.store.keyword_paths.move(
            path["id"], new, PathState.CONFIRMING, expires_at=expires
        ):
            return  # moved by another thread a moment ago
        by = OptSource.by_keyword(sc.code, message_id)
        self.subscriptions.subscribe(profile_id, by, short_code=sc.code)
        self._send(profile_id, sc, path["reply"], path["campaign_id"])
        if questions:
            self._send(profile_id, sc, questions[0].ask, path["campaign_id"])

    def _answer(self, path: sqlite3.Row, profile_id: int, sc: ShortCodeConfig, body: str) -> None:
        questions = [Question.from_json(q) for q in questions_of(path)]
        step = int(path["step"])
        campaign_id = path["campaign_id"]
        paths = self.store.keyword_paths
        if keywords.first_word(body) == keywords.squash(path["exit_word"]):
            if paths.move(path["id"], PathState.CANCELLED, PathState.ASKING):
                reply = path["exit_reply"] or "OK, no more questions."
                self._send(profile_id, sc, reply, campaign_id)
            return
        if step >= len(questions):  # the keyword lost questions it never had: end the path
            paths.move(path["id"], PathState.DONE, PathState.ASKING)
            return
        question = questions[step]
        expires = _expiry(path)
        self.store.db.after_commit(self._wake)
        value = question.accept(body)
        if value is None:
            paths.move(path["id"], PathState.ASKING, PathState.ASKING, expires_at=expires)
            self._send(profile_id, sc, question.invalid_reply(), campaign_id)
            return
        profile = self.store.profiles.get(profile_id)
        assert profile is not None
        self.store.profiles.update(
            profile_id, custom={**custom_fields(profile), question.field: value}
        )
        if step + 1 < len(questions):
            paths.move(
                path["id"], PathState.ASKING, PathState.ASKING, step=step + 1, expires_at=expires
            )
            self._send(profile_id, sc, questions[step + 1].ask, campaign_id)
        else:
            paths.move(path["id"], PathState.DONE, PathState.ASKING, step=step + 1)
            if path["done_reply"]:
                self._send(profile_id, sc, path["done_reply"], campaign_id)

    def cancel_open(self, profile_id: int, short_codes: Iterable[str]) -> None:
        """End the profile's open paths on these short codes (a STOP is the way out too)."""
        for code in short_codes:
            path = self.store.keyword_paths.open_for(profile_id, code)
            if path is not None:
                self.store.keyword_paths.move(
                    path["id"], PathState.CANCELLED, PathState(path["state"])
                )

    def expire_due(self) -> float | None:
        """Record the paths whose time ran out (EXPIRY_GRACE ago) as expired; seconds until
        the next one will (None: no open path). The housekeeper calls it. The grace leaves a
        gateway that just started the time to read from its SIMs a Y sent in time while it was
        down (judged by when it was sent, in :meth:`plan`)."""
        self.store.keyword_paths.expire_due(iso(now() - EXPIRY_GRACE))
        nxt = self.store.keyword_paths.next_expiry()
        if nxt is None:
            return None
        return max(0.0, (parse(nxt) + EXPIRY_GRACE - now()).total_seconds())

    def _send(
        self, profile_id: int, sc: ShortCodeConfig, text: str, campaign_id: int | None
    ) -> None:
        if not text:
            return
        try:
            # An answer to what the person just texted: it goes even when they are opted out
            # of this short code (as HELP's does); the dispatcher lets "keyword" messages by.
            self.outbox.submit(
                text,
                profile_id=profile_id,
                short_code=sc.code,
                campaign_id=campaign_id,
                user="keyword",
                allow_unsubscribed=True,
            )
        except SendRefused as exc:
            log.warning("no keyword reply to profile %d: %s", profile_id, exc)


# -- the control socket's "keyword" op (gateway keyword add|list|remove) -----------------------

_ADD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "short_code": str,
    "word": str,
    "reply": str,
    "campaign": (str, type(None)),
    "double_opt_in": bool,
    "confirm_prompt": str,
    "time_limit_minutes": int,
    "questions": list,
    "done_reply": str,
    "exit_word": str,
    "exit_reply": str,
}


def _field(request: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any):
    value = request.get(name, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) and kind is int:
        raise KeywordInvalid({name: "must be a whole number"})
    if not isinstance(value, kind):
        raise KeywordInvalid({name: f"must be {getattr(kind, '__name__', 'text or null')}"})
    return value


def _questions(raw: list) -> list[Question]:
    questions = []
    for n, q in enumerate(raw, start=1):
        if not isinstance(q, dict) or not isinstance(q.get("field"), str):
            raise KeywordInvalid({f"question_{n}": "a question is {field, ask, choices, invalid}"})
        choices = q.get("choices") or []
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise KeywordInvalid({f"question_{n}": "choices must be a list of texts"})
        questions.append(
            Question(
                field=q["field"],
                ask=str(q.get("ask") or ""),
                choices=tuple(choices),
                invalid=str(q.get("invalid") or ""),
            )
        )
    return questions


def _control(book: KeywordBook, request: Mapping[str, Any]) -> dict[str, Any]:
    action = request.get("action")
    actor = request.get("user") if isinstance(request.get("user"), str) else "cli"
    if action == "list":
        code = request.get("short_code")
        if code is not None and not isinstance(code, str):
            raise KeywordInvalid({"short_code": "must be text"})
        return {"ok": True, "keywords": [keyword_json(r) for r in book.live(code or None)]}
    if action == "remove":
        code = _field(request, "short_code", str, "")
        word = _field(request, "word", str, "")
        removed = book.remove(short_code=code, word=word, actor=actor)
        return {"ok": True, "removed": keyword_json(removed)}
    if action == "add":
        known = {"op", "action", "user", *_ADD_FIELDS}
        unknown = sorted(set(request) - known)
        if unknown:
            raise KeywordInvalid({unknown[0]: "unknown field"})
        row = book.add(
            short_code=_field(request, "short_code", str, ""),
            word=_field(request, "word", str, ""),
            reply=_field(request, "reply", str, ""),
            actor=actor,
            campaign=_field(request, "campaign", (str, type(None)), None),
            double_opt_in=_field(request, "double_opt_in", bool, False),
            confirm_prompt=_field(request, "confirm_prompt", str, ""),
            time_limit_minutes=_field(request, "time_limit_minutes", int, DEFAULT_LIMIT_MINUTES),
            questions=_questions(_field(request, "questions", list, [])),
            done_reply=_field(request, "done_reply", str, ""),
            exit_word=_field(request, "exit_word", str, "EXIT"),
            exit_reply=_field(request, "exit_reply", str, ""),
        )
        return {"ok": True, "keyword": keyword_json(row)}
    raise KeywordInvalid({"action": f"must be add, list or remove, not {action!r}"})


def control_reply(book: KeywordBook, request: Mapping[str, Any]) -> dict[str, Any]:
    """The answer to one ``keyword`` request of the control socket: {"ok": true, ...} or
    {"ok": false, "error", "errors": {field: what is wrong}}."""
    try:
        return _control(book, request)
    except KeywordInvalid as exc:
        return {"ok": False, "error": str(exc), "errors": exc.errors}
    except KeywordNotFound as exc:
        return {"ok": False, "error": str(exc), "errors": {"word": str(exc)}}
