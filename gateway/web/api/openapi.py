"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/api/v1/openapi.json`` and rendered as
the reference page (views/api_tokens.py). It is built here from the same tables the endpoints
use (the states of store/states.py, the limits of base.py), and tests check every endpoint's
real answers against it, so it cannot drift from what the API does.

A new group of endpoints adds its paths with :func:`add_paths` (and its schemas to
``SCHEMAS``) when its module is imported.
"""

from __future__ import annotations

import copy
from typing import Any

from ...messaging.profiles import STATUSES as PROFILE_STATUSES
from ...messaging.requests import (
    MAX_KEY_CHARS,
    MAX_NUMBER_CHARS,
    MAX_SHORT_CODE_CHARS,
    MAX_TEXT_CHARS,
)
from ...store.states import MessageStatus, PartStatus
from ...store.tokens import MAX_LABEL
from .base import DEFAULT_LIMIT, MAX_BODY_BYTES, MAX_LIMIT
from .errors import CODES

Schema = dict[str, Any]


def _nullable(kind: str, **more: Any) -> Schema:
    return {"type": [kind, "null"], **more}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _page_of(name: str, what: str) -> Schema:
    return {
        "type": "object",
        "description": f"A page of {what}.",
        "required": ["data", "next"],
        "additionalProperties": False,
        "properties": {
            "data": {"type": "array", "items": _ref(name)},
            "next": _nullable(
                "string",
                description="Pass as `cursor` to read the next page; null on the last page.",
            ),
        },
    }


TIME = {"type": "string", "description": "UTC, ISO 8601 with microseconds and offset."}

# What a client may give for a profile, new (ProfileNew) or changed (ProfileChange).
_PROFILE_FIELDS: Schema = {
    "name": {"type": "string"},
    "phone": {"type": "string"},
    "status": {"type": "string", "enum": list(PROFILE_STATUSES)},
    "subscribed": {"type": "boolean"},
    "custom": {"type": "object", "additionalProperties": {"type": "string"}},
}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "field"],
                "additionalProperties": False,
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "A word for the kind of error, e.g. `invalid`, "
                        "`unauthorized`, `idempotency_conflict`, `duplicate`, `rate_limited`.",
                    },
                    "message": {
                        "type": "string",
                        "description": "What went wrong and what to fix.",
                    },
                    "field": _nullable(
                        "string", description="The request field or parameter at fault."
                    ),
                },
            }
        },
    },
    "Part": {
        "type": "object",
        "description": "One SMS segment of an outbound message.",
        "required": ["seq", "status", "modem_id", "error", "sent_at", "reported_at"],
        "additionalProperties": False,
        "properties": {
            "seq": {"type": "integer", "minimum": 1},
            "status": {"type": "string", "enum": [s.value for s in PartStatus]},
            "modem_id": _nullable("string"),
            "error": _nullable("string"),
            "sent_at": _nullable("string", description="When the network took it (UTC)."),
            "reported_at": _nullable("string", description="When its status report came."),
        },
    },
    "Message": {
        "type": "object",
        "required": [
            "id",
            "direction",
            "profile_id",
            "phone",
            "short_code",
            "text",
            "status",
            "kind",
            "encoding",
            "parts_total",
            "modem_id",
            "error",
            "maybe_duplicate",
            "idempotency_key",
            "created_by",
            "created_at",
            "updated_at",
            "parts",
        ],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "direction": {"type": "string", "enum": ["in", "out"]},
            "profile_id": {"type": "integer"},
            "phone": {"type": "string", "description": "The other end's number, E.164."},
            "short_code": {"type": "string"},
            "text": {"type": "string"},
            "status": {
                "type": "string",
                "enum": [s.value for s in MessageStatus],
                "description": "Outbound: queued → sending → sent → delivered, or failed / "
                "expired. Inbound: received, or incomplete while parts are missing.",
            },
            "kind": _nullable(
                "string", description="Inbound: reply, opt-out, opt-in, help, oops, unknown."
            ),
            "encoding": _nullable("string", description="gsm7 or ucs2 (outbound)."),
            "parts_total": {"type": "integer", "minimum": 1},
            "modem_id": _nullable("string"),
            "error": _nullable("string", description="Why it failed or was held back."),
            "maybe_duplicate": {
                "type": "boolean",
                "description": "A part may have gone out twice (resent after a crash).",
            },
            "idempotency_key": _nullable("string"),
            "created_by": _nullable("string", description="The user who sent it."),
            "created_at": TIME,
            "updated_at": TIME,
            "parts": {
                "type": "array",
                "items": _ref("Part"),
                "description": "Outbound: one per SMS segment, made when it is sent. Inbound: "
                "empty (an inbound message is stored once it is whole).",
            },
        },
    },
    "MessagePage": _page_of("Message", "messages, newest first"),
    "SendRequest": {
        "type": "object",
        "description": "Give `to` or `profile_id`, not both.",
        "required": ["text"],
        "oneOf": [{"required": ["to"]}, {"required": ["profile_id"]}],
        "additionalProperties": False,
        "properties": {
            "to": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_NUMBER_CHARS,
                "description": "A phone number; without a country code it is read in the "
                "gateway's region. A number never texted gets a profile.",
            },
            "profile_id": {"type": "integer", "minimum": 1},
            "text": {"type": "string", "maxLength": MAX_TEXT_CHARS},
            "short_code": {
                "type": ["string", "null"],
                "maxLength": MAX_SHORT_CODE_CHARS,
                "description": "Default: the one the profile last talked with, else the first.",
            },
            "idempotency_key": {
                "type": ["string", "null"],
                "maxLength": MAX_KEY_CHARS,
                "description": "Send the same key again to retry safely: the message is "
                "stored once.",
            },
        },
    },
    "Profile": {
        "type": "object",
        "required": [
            "id",
            "name",
            "phone",
            "status",
            "subscribed",
            "subscriptions",
            "custom",
            "created_at",
            "updated_at",
            "last_message_at",
        ],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "phone": {"type": "string", "description": "E.164."},
            "status": {"type": "string", "enum": list(PROFILE_STATUSES)},
            "subscribed": {
                "type": "boolean",
                "description": "The all-short-codes switch (false after STOP ALL).",
            },
            "subscriptions": {
                "type": "object",
                "additionalProperties": {"type": "boolean"},
                "description": "For each configured short code, whether the profile takes"
                " texts from it (a STOP to one short code turns only that one off).",
            },
            "custom": {"type": "object", "additionalProperties": {"type": "string"}},
            "created_at": TIME,
            "updated_at": TIME,
            "last_message_at": _nullable("string"),
        },
    },
    "ProfilePage": _page_of("Profile", "profiles, in id order"),
    "ProfileNew": {
        "type": "object",
        "required": ["phone"],
        "additionalProperties": False,
        "properties": _PROFILE_FIELDS,
    },
    "ProfileChange": {
        "type": "object",
        "description": "Only the fields given change; `custom` replaces all custom fields.",
        "additionalProperties": False,
        "properties": _PROFILE_FIELDS,
    },
    "ShortCode": {
        "type": "object",
        "required": ["code", "name", "up", "modems"],
        "additionalProperties": False,
        "properties": {
            "code": {"type": "string"},
            "name": {"type": "string"},
            "up": {"type": "boolean", "description": "A modem of its pool can send now."},
            "modems": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Modem": {
        "type": "object",
        "required": [
            "id",
            "label",
            "state",
            "since",
            "short_codes",
            "signal",
            "registration",
            "registered",
            "operator",
            "last_error",
            "sending",
        ],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            "label": _nullable("string"),
            "state": {
                "type": "string",
                "description": "searching, starting, up, down, failed, failing (its sends "
                "fail; out of routing), probing (its next send decides), unconfigured, "
                "unknown (no modem manager runs).",
            },
            "since": _nullable("string"),
            "short_codes": {"type": "array", "items": {"type": "string"}},
            "signal": {
                "type": ["object", "null"],
                "properties": {
                    "rssi": _nullable("integer"),
                    "dbm": _nullable("integer"),
                    "bars": _nullable("integer"),
                },
            },
            "registration": _nullable("string"),
            "registered": {"type": "boolean"},
            "operator": _nullable("string"),
            "last_error": _nullable("string"),
            "sending": {
                "type": ["object", "null"],
                "required": ["state", "failures", "reason", "next_check"],
                "properties": {
                    "state": {"type": "string"},
                    "failures": {"type": "integer"},
                    "reason": _nullable("string"),
                    "next_check": _nullable("string"),
                },
            },
        },
    },
    "Me": {
        "type": "object",
        "required": ["user", "role", "token_id"],
        "additionalProperties": False,
        "properties": {
            "user": {"type": "string"},
            "role": {"type": "string", "enum": ["admin", "agent"]},
            "token_id": {"type": "integer"},
        },
    },
    "Token": {
        "type": "object",
        "required": [
            "id",
            "user",
            "label",
            "hint",
            "created",
            "created_by",
            "last_used",
            "revoked",
        ],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "user": {"type": "string"},
            "label": {"type": "string", "maxLength": MAX_LABEL},
            "hint": {"type": "string", "description": "The token's first characters."},
            "created": TIME,
            "created_by": _nullable("string"),
            "last_used": _nullable("string", description="Recorded at most once a minute."),
            "revoked": _nullable("string"),
        },
    },
}


def _list_of(name: str) -> Schema:
    return {
        "type": "object",
        "required": ["data"],
        "additionalProperties": False,
        "properties": {"data": {"type": "array", "items": _ref(name)}},
    }


SCHEMAS["ShortCodeList"] = _list_of("ShortCode")
SCHEMAS["ModemList"] = _list_of("Modem")
SCHEMAS["TokenList"] = _list_of("Token")

ERROR_TEXT = {
    400: "The body is not JSON, or not a JSON object.",
    401: "No token, or one that is revoked, mistyped or of a disabled user.",
    403: "The token's user may not do this (an agent's token).",
    404: "There is no such thing.",
    409: "Conflicts with what is stored.",
    413: f"The body is over {MAX_BODY_BYTES // 1024} KiB.",
    422: "A field or parameter is not valid; `field` names it.",
    429: "Over the token's rate limit; wait `Retry-After` seconds.",
    503: "The store cannot be used right now (disk full, read-only).",
}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    for code in sorted({401, 429, 503, *codes}):
        out[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    return out


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _path_id(name: str, what: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": what,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**62},
    }


CURSOR = _query(
    "cursor", "The `next` value of the page before.", {"type": "string", "pattern": "^[0-9]+$"}
)
LIMIT = _query(
    "limit",
    f"Rows per page (default {DEFAULT_LIMIT}).",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
)
BODY_ERRORS = (400, 413, 422)

PATHS: dict[str, dict[str, Schema]] = {
    "/messages": {
        "post": {
            "tags": ["Messages"],
            "operationId": "sendMessage",
            "summary": "Send a text",
            "description": "Stores the message (it is sent when a modem of its short code "
            "can) and answers with it. With an `idempotency_key` seen before: 200 and the "
            "stored message when the request is the same, 409 when it is another.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("SendRequest")}},
            },
            "responses": {
                "201": _json(_ref("Message"), "Accepted and stored."),
                "200": _json(_ref("Message"), "Already stored under this idempotency key."),
                **_errors(*BODY_ERRORS, 409),
            },
        },
        "get": {
            "tags": ["Messages"],
            "operationId": "listMessages",
            "summary": "List messages",
            "description": "Newest first, in keyset pages: pass `next` as `cursor`. Filters "
            "combine.",
            "parameters": [
                _query(
                    "q",
                    "Words the text contains (each also as the start of a longer word).",
                    {"type": "string", "maxLength": 200},
                ),
                _query("direction", "in or out.", {"type": "string", "enum": ["in", "out"]}),
                _query(
                    "status",
                    "A message status.",
                    {"type": "string", "enum": [s.value for s in MessageStatus]},
                ),
                _query("short_code", "One short code's messages.", {"type": "string"}),
                _query(
                    "profile_id",
                    "One profile's messages.",
                    {"type": "integer", "minimum": 1, "maximum": 2**62},
                ),
                _query(
                    "since",
                    "Only messages stored at or after this time (ISO 8601 with "
                    "a zone, e.g. 2026-01-31T08:00:00Z).",
                    {"type": "string", "format": "date-time"},
                ),
                CURSOR,
                LIMIT,
            ],
            "responses": {"200": _json(_ref("MessagePage"), "A page."), **_errors(422)},
        },
    },
    "/messages/{id}": {
        "get": {
            "tags": ["Messages"],
            "operationId": "getMessage",
            "summary": "A message's status and parts",
            "parameters": [_path_id("id", "The message's id.")],
            "responses": {"200": _json(_ref("Message"), "The message."), **_errors(404, 422)},
        }
    },
    "/profiles": {
        "get": {
            "tags": ["Profiles"],
            "operationId": "listProfiles",
            "summary": "List and search profiles",
            "description": "In id order (new profiles come last), in keyset pages.",
            "parameters": [
                _query("q", "Part of a name or number.", {"type": "string", "maxLength": 200}),
                _query(
                    "status",
                    "active or inactive.",
                    {"type": "string", "enum": list(PROFILE_STATUSES)},
                ),
                CURSOR,
                LIMIT,
            ],
            "responses": {"200": _json(_ref("ProfilePage"), "A page."), **_errors(422)},
        },
        "post": {
            "tags": ["Profiles"],
            "operationId": "createProfile",
            "summary": "Add a profile",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("ProfileNew")}},
            },
            "responses": {
                "201": _json(_ref("Profile"), "Added."),
                **_errors(*BODY_ERRORS, 409),
            },
        },
    },
    "/profiles/{id}": {
        "get": {
            "tags": ["Profiles"],
            "operationId": "getProfile",
            "summary": "A profile",
            "parameters": [_path_id("id", "The profile's id.")],
            "responses": {"200": _json(_ref("Profile"), "The profile."), **_errors(404, 422)},
        },
        "patch": {
            "tags": ["Profiles"],
            "operationId": "updateProfile",
            "summary": "Change a profile",
            "description": "A change of `subscribed` is recorded in the opt history as by "
            "hand; `status` inactive stops every text to it.",
            "parameters": [_path_id("id", "The profile's id.")],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("ProfileChange")}},
            },
            "responses": {
                "200": _json(_ref("Profile"), "Saved."),
                **_errors(*BODY_ERRORS, 404, 409),
            },
        },
        "delete": {
            "tags": ["Profiles"],
            "operationId": "deactivateProfile",
            "summary": "Deactivate a profile",
            "description": "Profiles are never erased (their messages and opt history stay): "
            "this makes it inactive, so no text goes to it, as the web app's Deactivate "
            'does. `PATCH {"status": "active"}` brings it back.',
            "parameters": [_path_id("id", "The profile's id.")],
            "responses": {"200": _json(_ref("Profile"), "Inactive now."), **_errors(404)},
        },
    },
    "/profiles/{id}/messages": {
        "get": {
            "tags": ["Profiles"],
            "operationId": "profileMessages",
            "summary": "A profile's conversation",
            "description": "Both directions, newest first, in keyset pages.",
            "parameters": [_path_id("id", "The profile's id."), CURSOR, LIMIT],
            "responses": {"200": _json(_ref("MessagePage"), "A page."), **_errors(404, 422)},
        }
    },
    "/short-codes": {
        "get": {
            "tags": ["Status"],
            "operationId": "listShortCodes",
            "summary": "Short codes and whether each can send",
            "responses": {"200": _json(_ref("ShortCodeList"), "Every short code."), **_errors(422)},
        }
    },
    "/modems": {
        "get": {
            "tags": ["Status"],
            "operationId": "listModems",
            "summary": "Modem health",
            "responses": {"200": _json(_ref("ModemList"), "Every modem."), **_errors(422)},
        }
    },
    "/me": {
        "get": {
            "tags": ["Tokens"],
            "operationId": "me",
            "summary": "Who this token acts for",
            "responses": {"200": _json(_ref("Me"), "The token's user."), **_errors(422)},
        }
    },
    "/tokens": {
        "get": {
            "tags": ["Tokens"],
            "operationId": "listTokens",
            "summary": "API tokens",
            "description": "Your own; an administrator's token sees everyone's (or one "
            "user's with `user`).",
            "parameters": [_query("user", "Only this user's tokens.", {"type": "string"})],
            "responses": {
                "200": _json(_ref("TokenList"), "Tokens, newest first."),
                **_errors(403, 422),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "tags": ["Tokens"],
            "operationId": "openapi",
            "summary": "This description of the API (OpenAPI 3.1)",
            "description": "Needs no token.",
            "security": [],
            "responses": {"200": _json({"type": "object"}, "The document.")},
        }
    },
    "/tokens/{id}": {
        "delete": {
            "tags": ["Tokens"],
            "operationId": "revokeToken",
            "summary": "Revoke a token",
            "description": "Your own; an administrator's token can revoke anyone's.",
            "parameters": [_path_id("id", "The token's id.")],
            "responses": {"200": _json(_ref("Token"), "Revoked."), **_errors(403, 404)},
        }
    },
}

TAGS = [
    {"name": "Messages", "description": "Send texts and follow them."},
    {"name": "Profiles", "description": "The people the gateway texts."},
    {"name": "Status", "description": "Short codes and modems."},
    {"name": "Tokens", "description": "Your API tokens."},
]


def add_paths(
    paths: dict[str, dict[str, Schema]],
    schemas: dict[str, Schema] | None = None,
    tag: dict[str, str] | None = None,
) -> None:
    """Add a group of endpoints to the document (a module of endpoints calls it on import)."""
    PATHS.update(paths)
    SCHEMAS.update(schemas or {})
    if tag is not None:
        TAGS.append(tag)


def document(version: str) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    responses: dict[str, Schema] = {}
    for code, text in ERROR_TEXT.items():
        response: Schema = _json(_ref("Error"), text)
        if code == 401:
            response["headers"] = {
                "WWW-Authenticate": {
                    "description": 'Bearer realm="gateway"',
                    "schema": {"type": "string"},
                }
            }
        if code == 429:
            response["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait.",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                }
            }
        responses[f"E{code}"] = response
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SMS gateway API",
            "version": version,
            "description": "Send texts, follow their status, and manage profiles. "
            "Authenticate with `Authorization: Bearer TOKEN` (a token from API tokens in the "
            'web app, or `gateway token create`). Errors are `{"error": {"code", '
            '"message", "field"}}`; codes used: '
            + ", ".join(f"{k} {v}" for k, v in sorted(CODES.items()))
            + ".",
        },
        "servers": [{"url": "/api/v1"}],
        "tags": copy.deepcopy(TAGS),
        "security": [{"bearer": []}],
        "paths": copy.deepcopy(PATHS),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (gw_...).",
                }
            },
            "schemas": copy.deepcopy(SCHEMAS),
            "responses": responses,
        },
    }
