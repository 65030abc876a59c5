"""Errors of the SMS codec: the one class a caller catches for malformed PDUs and text."""

from __future__ import annotations


class CodecError(ValueError):
    """Malformed input to the codec: a PDU that is not what it claims, or text it cannot encode.

    ``where`` names the place (an octet offset and the field being read, or a character position)
    and ``why`` says what was wrong, so a log line tells a person what to look at.
    Every failure of :func:`gateway.modem.pdu.decode` on bad input is this class; nothing else
    escapes the decoder.
    """

    def __init__(self, where: str, why: str) -> None:
        self.where = where
        self.why = why
        super().__init__(f"{where}: {why}")


class MessageTooLong(CodecError):
    """A text needs more parts than the configured maximum."""

    def __init__(self, parts: int, units: int, encoding: str, max_parts: int) -> None:
        self.parts = parts
        self.units = units
        self.encoding = encoding
        self.max_parts = max_parts
        self.unit = unit = (
            "septets" if encoding == "gsm7" else "UTF-16 units" if encoding == "ucs2" else "octets"
        )
        super().__init__(
            "text",
            f"the message is {units} {unit} long and needs {parts} SMS parts; "
            f"the limit is {max_parts} parts",
        )
