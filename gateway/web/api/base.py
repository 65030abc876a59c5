"""The ``/api/v1`` blueprint: token authentication, the rate limit, JSON bodies, paging
arguments and errors, shared by the endpoint modules (messages.py, profiles.py, status.py,
account.py; a broadcasts.py adds its routes to the same blueprint and its paths to
openapi.py's document the same way).

Requests authenticate with ``Authorization: Bearer TOKEN`` only: a browser's session cookie is
not taken here, so no request to ``/api/v1`` can be forged from another site and none needs a
CSRF token (the blueprint is exempt from the app's CSRF check). The web app's own calls stay
under ``/api`` (views/api.py), with the session and its CSRF token.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, g, request
from werkzeug.exceptions import HTTPException

from ...store import StoreError
from ...store.times import iso
from ..context import app_state, services
from ..helpers import MAX_ID, whole_number
from .errors import ApiError, error_response, from_api_error
from .tokens import TokenUser, authenticate, bearer

log = logging.getLogger(__name__)

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

MAX_BODY_BYTES = 64 * 1024  # a send or a profile is a few KiB at most
TOO_LARGE = f"The request body is too large ({MAX_BODY_BYTES // 1024} KiB at most)."
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Endpoints anyone may read: the API's own description.
PUBLIC = {"api_v1.openapi_json"}


def token_user() -> TokenUser:
    """The user the request's token acts for (set by :func:`_authenticate`)."""
    user: TokenUser = g.api_user
    return user


@bp.url_value_preprocessor
def _ascii_ids(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Werkzeug's int converter takes any Unicode digit ("/profiles/൧" is profile 1); an id in
    # this API is written in ASCII digits, as the document says, and anything else is no
    # address here.
    if values and not request.path.isascii():
        raise ApiError(
            404, "There is nothing at this address; see /api/v1/openapi.json for the API's paths."
        )


@bp.before_request
def _authenticate() -> Any:
    if request.endpoint in PUBLIC:
        return None
    if bearer(request) is None:
        raise ApiError(
            401,
            "Send an API token in the Authorization header: 'Authorization: Bearer TOKEN'. "
            "Create one under API tokens in the web app, or with 'gateway token create'.",
        )
    user = authenticate(request)
    if user is None:
        raise ApiError(
            401,
            "The API token is not valid: it was revoked, mistyped, or its user is disabled. "
            "Create a new one under API tokens.",
            headers={"WWW-Authenticate": 'Bearer realm="gateway", error="invalid_token"'},
        )
    g.api_user = user
    limits = services().config.api
    wait = app_state().api_buckets.take(user.token_id, limits.rate_per_minute, limits.burst)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiError(
            429,
            f"Too many requests with this token ({limits.rate_per_minute} a minute, "
            f"{limits.burst} at once); wait {seconds} s and try again.",
            headers={"Retry-After": str(seconds)},
        )
    return None


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return from_api_error(exc)


@bp.errorhandler(StoreError)
def _store_error(exc: StoreError):
    log.error("API request %s %s: %s", request.method, request.path, exc)
    return error_response(
        503, f"The gateway cannot use its store right now: {exc}", headers={"Retry-After": 30}
    )


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return http_error(exc)


def http_error(exc: HTTPException):
    """An HTTP error raised by Flask or Werkzeug (unknown address, wrong method, a body over
    the app's limit) in the API's shape; the app's handlers call it for ``/api/v1`` too."""
    status = exc.code or 500
    message = {
        404: "There is nothing at this address; see /api/v1/openapi.json for the API's paths.",
        405: f"{request.method} does not work at this address; see /api/v1/openapi.json.",
        413: TOO_LARGE,
    }.get(status, exc.description or "The request failed.")
    headers = {}
    valid = getattr(exc, "valid_methods", None)
    if status == 405 and valid:
        headers["Allow"] = ", ".join(valid)
    if status >= 500:
        message = "Something went wrong on the gateway; it has been logged."
    return error_response(status, message, headers=headers)


@bp.errorhandler(500)
def _server_error(exc: Exception):
    log.exception("API request %s %s failed", request.method, request.path)
    return error_response(500, "Something went wrong on the gateway; it has been logged.")


# -- request helpers -----------------------------------------------------------------------


def json_object() -> dict[str, Any]:
    """The request's JSON object; 400 for a body that is not JSON or not an object, 413 for
    one over ``MAX_BODY_BYTES``."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, TOO_LARGE)
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, TOO_LARGE)
    if not request.is_json:
        raise ApiError(
            400, "Send the body as JSON with the header 'Content-Type: application/json'."
        )
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ApiError(400, "The JSON is nested too deeply.") from None
    except ValueError as exc:  # also bytes that are not UTF-8
        raise ApiError(400, f"The body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Send a JSON object ({...}) as the body.")
    return data


def only_fields(data: dict[str, Any], known: set[str]) -> None:
    """422 for a field the request does not have (a misspelt one is never dropped silently)."""
    for name in data:
        if name not in known:
            shown = ascii(name)[1:-1][:40]
            raise ApiError(
                422,
                f"Unknown field {shown!r}; this request takes {', '.join(sorted(known))}.",
                shown,
            )


def whole(value: Any, field: str, *, what: str) -> int:
    """A whole number from JSON (not true/false, not 1.5); 422 naming ``field`` otherwise."""
    number = whole_number(value, minimum=1) if isinstance(value, int) else None
    if number is None:
        raise ApiError(422, f"{field} must be {what} (a whole number above 0).", field)
    return number


def query_args(known: set[str]) -> None:
    """422 for a query parameter this endpoint does not take."""
    for name in request.args:
        if name not in known:
            shown = ascii(name)[1:-1][:40]
            raise ApiError(
                422,
                f"Unknown query parameter {shown!r}; this endpoint takes "
                f"{', '.join(sorted(known)) or 'none'}.",
                shown,
            )


def limit_arg() -> int:
    """``limit``: rows per page, 1 to MAX_LIMIT (default DEFAULT_LIMIT)."""
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    value = whole_number(raw, minimum=1)
    if value is None or value > MAX_LIMIT:
        raise ApiError(422, f"limit must be a whole number from 1 to {MAX_LIMIT}.", "limit")
    return value


def cursor_arg() -> int | None:
    """``cursor``: the ``next`` value of the page before, or None for the first page."""
    raw = request.args.get("cursor")
    if raw is None:
        return None
    value = whole_number(raw, minimum=1)
    if value is None:
        raise ApiError(
            422, "cursor must be the 'next' value of the page before, as it was given.", "cursor"
        )
    return value


def found(lookup: Callable[[int], Any], item_id: int, what: str) -> Any:
    """The row ``lookup(item_id)`` finds, else 404 "There is no <what> with id N." (an id
    past SQLite's integer range is looked up nowhere: it cannot exist)."""
    row = lookup(item_id) if item_id <= MAX_ID else None
    if row is None:
        raise ApiError(404, f"There is no {what} with id {item_id}.", "id")
    return row


def id_arg(name: str) -> int | None:
    """A whole-number id from the query string, or None when absent."""
    raw = request.args.get(name)
    if raw is None:
        return None
    value = whole_number(raw, minimum=1)
    if value is None:
        raise ApiError(422, f"{name} must be an id (a whole number above 0).", name)
    return value


def time_arg(name: str) -> str | None:
    """An ISO 8601 time with its offset from the query string, as a store timestamp (UTC)."""
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ApiError(
            422, f"{name} must be an ISO 8601 time such as 2026-01-31T08:00:00Z.", name
        ) from None
    if moment.tzinfo is None:
        raise ApiError(
            422, f"{name} needs a time zone: end it with Z (UTC) or an offset such as +02:00.", name
        )
    if moment.year < 1970:
        moment = datetime(1970, 1, 1, tzinfo=UTC)
    return iso(moment)


def choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw not in choices:
        raise ApiError(422, f"{name} must be one of {', '.join(choices)}.", name)
    return raw
