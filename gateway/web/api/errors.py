"""The REST API's errors: always ``{"error": {"code", "message", "field"}}`` with the status
the HTTP ecosystem expects, and a message that says what to fix."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

# Each status's code word, as the OpenAPI document lists them.
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}

AUTH_CHALLENGE = 'Bearer realm="gateway"'


class ApiError(Exception):
    """An answer other than success: ``status``, a ``code`` word, a message for the person
    writing the client, the request ``field`` at fault (or None), and extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code or CODES.get(status, "error")
        self.headers = headers or {}


def error_response(
    status: int,
    message: str,
    field: str | None = None,
    *,
    code: str | None = None,
    headers: dict[str, Any] | None = None,
) -> Response:
    """The JSON answer for an error."""
    resp = jsonify(
        error={"code": code or CODES.get(status, "error"), "message": message, "field": field}
    )
    resp.status_code = status
    for name, value in (headers or {}).items():
        resp.headers[name] = str(value)
    if status == 401:
        resp.headers.setdefault("WWW-Authenticate", AUTH_CHALLENGE)
    return resp


def from_api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.message, exc.field, code=exc.code, headers=exc.headers)
