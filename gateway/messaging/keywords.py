"""Classifying an inbound text: an opt-out, opt-in, help or oops keyword, or a reply.

Keywords match the whole message, case- and space-insensitively ("Stop", " s t o p ", "STOP!"
with trailing punctuation), as carriers' STOP handling does; a sentence that merely contains
"stop" is a reply, not an opt-out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

REPLY = "reply"
OPT_OUT = "opt-out"
OPT_IN = "opt-in"
HELP = "help"
OOPS = "oops"


def squash(text: str) -> str:
    """Upper-case letters and digits only: what a keyword is compared on."""
    folded = unicodedata.normalize("NFKD", text)
    return re.sub(r"[\W_]+", "", folded, flags=re.UNICODE).upper()


def classify(
    text: str,
    *,
    opt_out: Iterable[str],
    opt_in: Iterable[str],
    help: Iterable[str],
    oops: Iterable[str],
) -> str:
    """The kind of an inbound message given a short code's keyword lists."""
    word = squash(text)
    if not word:
        return REPLY
    for kind, words in ((OPT_OUT, opt_out), (OPT_IN, opt_in), (HELP, help), (OOPS, oops)):
        if word in {squash(w) for w in words}:
            return kind
    return REPLY
