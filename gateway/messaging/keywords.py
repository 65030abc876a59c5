"""Classifying an inbound text: an opt-out (of this short code or of all), opt-in, help or
oops keyword, or a reply.

These keywords match the whole message, case-, accent- and space-insensitively ("Stop",
" s t o p ", "STOP!" with trailing punctuation, "stop all"), as carriers' STOP handling does; a
sentence that merely contains "stop" is a reply, not an opt-out. The team's own keywords
(messaging/optin.py) match the first word of a text: :func:`first_word`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

REPLY = "reply"
OPT_OUT = "opt-out"
OPT_OUT_ALL = "opt-out-all"
OPT_IN = "opt-in"
HELP = "help"
OOPS = "oops"


def squash(text: str) -> str:
    """Upper-case letters and digits only: what a keyword is compared on."""
    folded = unicodedata.normalize("NFKD", text)
    # NFKD splits "é" into "e" and a combining accent, which is not a word character.
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "", folded, flags=re.UNICODE).upper()


def first_word(text: str) -> str:
    """The first word of a text, squashed (:func:`squash`): what a team keyword is matched on
    ("Join Lincoln" and "join!" both give ``JOIN``)."""
    for token in text.split():
        word = squash(token)
        if word:
            return word
    return ""


def classify(
    text: str,
    *,
    opt_out: Iterable[str],
    opt_out_all: Iterable[str] = (),
    opt_in: Iterable[str],
    help: Iterable[str],
    oops: Iterable[str],
) -> str:
    """The kind of an inbound message given a short code's keyword lists."""
    word = squash(text)
    if not word:
        return REPLY
    kinds = (
        (OPT_OUT_ALL, opt_out_all),  # first: where the law puts STOP here, it means all
        (OPT_OUT, opt_out),
        (OPT_IN, opt_in),
        (HELP, help),
        (OOPS, oops),
    )
    for kind, words in kinds:
        if word in {squash(w) for w in words}:
            return kind
    return REPLY
