"""The OpenAPI description of ``/api/v1/broadcasts`` and ``/api/v1/segments`` (broadcasts.py
adds it to the document with :func:`add_broadcast_paths` when it is imported)."""

from __future__ import annotations

from ...messaging.requests import MAX_KEY_CHARS, MAX_SHORT_CODE_CHARS, MAX_TEXT_CHARS
from ...store.audiences import MAX_FIELD_CHARS
from ...store.states import BroadcastState
from .openapi import (
    BODY_ERRORS,
    CURSOR,
    LIMIT,
    TIME,
    Schema,
    _errors,
    _json,
    _list_of,
    _nullable,
    _page_of,
    _path_id,
    _ref,
    add_paths,
)

MAX_NAME = 200  # broadcasts.py's MAX_NAME_CHARS (not imported: that module imports this one)
MAX_CONDITIONS = 50
COUNT = {"type": "integer", "minimum": 0}

CONDITION_TEXT: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 1000,
    "description": "FIELD OP VALUE, e.g. `school = Lincoln`, `grade in 3,4,5`, "
    "`status != inactive`, `last_activity within 30`, `subscribed_to = 55123`.",
}
CONDITION_OBJECT: Schema = {
    "type": "object",
    "required": ["field", "op"],
    "additionalProperties": False,
    "properties": {
        "field": {
            "type": "string",
            "maxLength": MAX_FIELD_CHARS,
            "description": "name, phone, status, subscribed, subscribed_to, short_code, list, "
            "opted_in, last_activity, added, or a custom field's name.",
        },
        "op": {
            "type": "string",
            "description": "=, !=, in, not in, contains, starts with, is empty, is not "
            "empty; for dates before, after, within, not within (days).",
        },
        "value": {"type": "string"},
    },
}


def _by_name_or_id(key: str) -> Schema:
    """An audience object naming a segment or a list by its name or its id."""
    name_or_id = [
        {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
        {"type": "integer", "minimum": 1, "maximum": 2**62},
    ]
    return {
        "type": "object",
        "required": [key],
        "additionalProperties": False,
        "properties": {key: {"oneOf": name_or_id}},
    }


BROADCAST_REQUIRED = [
    "id",
    "name",
    "state",
    "short_code",
    "scheduled_for",
    "recipients",
    "queued",
    "sent",
    "delivered",
    "failed",
    "skipped",
    "cancelled",
    "parts",
    "text",
    "campaign",
    "audience",
    "timezone",
    "per_recipient_tz",
    "encoding",
    "idempotency_key",
    "created_by",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
]

SCHEMAS: dict[str, Schema] = {
    "Broadcast": {
        "type": "object",
        "required": BROADCAST_REQUIRED,
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "state": {
                "type": "string",
                "enum": [s.value for s in BroadcastState],
                "description": "scheduled → sending → done; paused between; cancelled.",
            },
            "short_code": {"type": "string"},
            "scheduled_for": _nullable("string", description="UTC; null: sent at once."),
            "recipients": {
                **COUNT,
                "description": "Profiles it goes to (the audience less those skipped when it "
                "was made).",
            },
            "queued": {**COUNT, "description": "Not gone out yet (waiting or in the queue)."},
            "sent": {**COUNT, "description": "Taken by the network (delivered included)."},
            "delivered": COUNT,
            "failed": COUNT,
            "skipped": {
                **COUNT,
                "description": "Of the audience, not texted: opted out, inactive, not a "
                "mobile number, or too long after its merge fields.",
            },
            "cancelled": COUNT,
            "parts": {
                "type": "integer",
                "minimum": 1,
                "description": "SMS per message for the longest expansion of the text.",
            },
            "text": {
                "type": "string",
                "description": "With its merge fields, e.g. `{first_name}`.",
            },
            "campaign": _nullable("string"),
            "audience": {
                "type": "object",
                "description": 'As chosen: {"segment", "segment_id"}, {"list", "list_id"} '
                'or {"conditions": {"match", "conditions"}}.',
            },
            "timezone": {"type": "string"},
            "per_recipient_tz": {"type": "boolean"},
            "encoding": _nullable("string"),
            "idempotency_key": _nullable("string"),
            "created_by": _nullable("string"),
            "created_at": TIME,
            "updated_at": TIME,
            "started_at": _nullable("string"),
            "finished_at": _nullable("string"),
        },
    },
    "BroadcastPage": _page_of("Broadcast", "broadcasts, newest first"),
    "BroadcastNew": {
        "type": "object",
        "required": ["text", "short_code", "audience"],
        "additionalProperties": False,
        "properties": {
            "text": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_TEXT_CHARS,
                "description": "Merge fields: {first_name}, {name}, {phone} and any custom "
                "field ({school}); emoji names such as :smile: become emoji.",
            },
            "short_code": {"type": "string", "minLength": 1, "maxLength": MAX_SHORT_CODE_CHARS},
            "audience": {
                "description": "Exactly one of a segment (name or id), a list (name or id) or "
                "conditions that all must hold.",
                "oneOf": [
                    _by_name_or_id("segment"),
                    _by_name_or_id("list"),
                    {
                        "type": "object",
                        "required": ["where"],
                        "additionalProperties": False,
                        "properties": {
                            "where": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": MAX_CONDITIONS,
                                "items": CONDITION_TEXT,
                            }
                        },
                    },
                ],
            },
            "name": {"type": ["string", "null"], "maxLength": MAX_NAME},
            "campaign": {
                "type": ["string", "null"],
                "maxLength": MAX_NAME,
                "description": "Groups broadcasts in reports; default: the name.",
            },
            "at": {
                "type": ["string", "null"],
                "maxLength": MAX_NAME,
                "description": "When to send (ISO 8601, e.g. 2026-12-24T09:00; without an "
                "offset it is read in `timezone`). Default: now.",
            },
            "timezone": {
                "type": ["string", "null"],
                "maxLength": MAX_NAME,
                "description": "A zone name such as Europe/Berlin; default: the site's.",
            },
            "per_recipient_tz": {
                "type": "boolean",
                "description": "Send at `at` on each profile's own clock (its custom field "
                "`timezone`).",
            },
            "idempotency_key": {
                "type": ["string", "null"],
                "maxLength": MAX_KEY_CHARS,
                "description": "Send the same key again to retry safely: the broadcast is "
                "made once.",
            },
        },
    },
    "Segment": {
        "type": "object",
        "required": [
            "id",
            "name",
            "match",
            "conditions",
            "count",
            "created_by",
            "created_at",
            "updated_at",
        ],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "match": {"type": "string", "enum": ["all", "any"]},
            "conditions": {"type": "array", "items": CONDITION_OBJECT},
            "count": _nullable(
                "integer", description="Profiles that match now (null: unreadable conditions)."
            ),
            "created_by": _nullable("string"),
            "created_at": TIME,
            "updated_at": TIME,
            "sample": {
                "type": "array",
                "items": _ref("Profile"),
                "description": "The first profiles that match (one segment only).",
            },
        },
    },
    "SegmentNew": {
        "type": "object",
        "required": ["name", "conditions"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
            "match": {
                "type": "string",
                "enum": ["all", "any"],
                "description": "all (default): every condition holds; any: one of them.",
            },
            "conditions": {
                "type": "array",
                "maxItems": MAX_CONDITIONS,
                "items": {"oneOf": [CONDITION_TEXT, CONDITION_OBJECT]},
                "description": "An empty list matches every profile.",
            },
        },
    },
}
SCHEMAS["SegmentList"] = _list_of("Segment")
SCHEMAS["List"] = {
    "type": "object",
    "required": ["id", "name", "source", "members", "created_by", "created_at"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "source": {"type": "string", "description": "CSV upload or Profiles table."},
        "members": COUNT,
        "created_by": _nullable("string"),
        "created_at": TIME,
    },
}
SCHEMAS["ListList"] = _list_of("List")
SCHEMAS["SegmentChange"] = {
    **{k: v for k, v in SCHEMAS["SegmentNew"].items() if k != "required"},
    "description": "Only the fields given change.",
}

BROADCAST_ID = _path_id("id", "The broadcast's id.")
SEGMENT_ID = _path_id("id", "The segment's id.")


def _action(verb: str, summary: str, description: str) -> Schema:
    return {
        "post": {
            "tags": ["Broadcasts"],
            "operationId": f"{verb}Broadcast",
            "summary": summary,
            "description": description + " 409 when its state does not allow it.",
            "parameters": [BROADCAST_ID],
            "responses": {
                "200": _json(_ref("Broadcast"), "Done; the broadcast now."),
                **_errors(404, 409, 422),
            },
        }
    }


PATHS: dict[str, dict[str, Schema]] = {
    "/broadcasts": {
        "get": {
            "tags": ["Broadcasts"],
            "operationId": "listBroadcasts",
            "summary": "List broadcasts",
            "description": "Newest first, in keyset pages: pass `next` as `cursor`.",
            "parameters": [CURSOR, LIMIT],
            "responses": {"200": _json(_ref("BroadcastPage"), "A page."), **_errors(422)},
        },
        "post": {
            "tags": ["Broadcasts"],
            "operationId": "createBroadcast",
            "summary": "Create a broadcast",
            "description": "Checks the text (merge fields, length of the longest expansion "
            "over the audience), short code, audience and time, and stores the broadcast with "
            "its recipients (opted-out and inactive profiles are recorded as skipped); it "
            "starts at once or at `at`. With an `idempotency_key` seen before: 200 and the "
            "stored broadcast when the request is the same, 409 when it is another.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("BroadcastNew")}},
            },
            "responses": {
                "201": _json(_ref("Broadcast"), "Created."),
                "200": _json(_ref("Broadcast"), "Already created under this idempotency key."),
                **_errors(*BODY_ERRORS, 409),
            },
        },
    },
    "/broadcasts/{id}": {
        "get": {
            "tags": ["Broadcasts"],
            "operationId": "getBroadcast",
            "summary": "A broadcast's state and counters",
            "parameters": [BROADCAST_ID],
            "responses": {"200": _json(_ref("Broadcast"), "The broadcast."), **_errors(404, 422)},
        }
    },
    "/broadcasts/{id}/pause": _action(
        "pause",
        "Pause a broadcast",
        "Scheduled or sending: nothing more goes to the queue, and what no modem has taken "
        "comes back.",
    ),
    "/broadcasts/{id}/resume": _action(
        "resume", "Resume a paused broadcast", "It goes on (or waits again for its time)."
    ),
    "/broadcasts/{id}/cancel": _action(
        "cancel",
        "Cancel a broadcast",
        "For good: what has not gone to a modem never will; what went stays.",
    ),
    "/segments": {
        "get": {
            "tags": ["Broadcasts"],
            "operationId": "listSegments",
            "summary": "Segments with their counts",
            "description": "By name; each with how many profiles match now.",
            "responses": {"200": _json(_ref("SegmentList"), "Every segment."), **_errors(422)},
        },
        "post": {
            "tags": ["Broadcasts"],
            "operationId": "createSegment",
            "summary": "Save a segment",
            "description": "422 names the condition at fault (`conditions[0]`); 409 when the "
            "name is taken (names are compared without case).",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("SegmentNew")}},
            },
            "responses": {
                "201": _json(_ref("Segment"), "Saved, with its count and sample."),
                **_errors(*BODY_ERRORS, 409),
            },
        },
    },
    "/lists": {
        "get": {
            "tags": ["Broadcasts"],
            "operationId": "listLists",
            "summary": "Static lists with their sizes",
            "description": "By name. Lists are made in the web app (a CSV file, or profiles "
            'ticked in the Profiles table); a broadcast takes one as `{"list": NAME or ID}`.',
            "responses": {"200": _json(_ref("ListList"), "Every list."), **_errors(422)},
        }
    },
    "/segments/{id}": {
        "patch": {
            "tags": ["Broadcasts"],
            "operationId": "updateSegment",
            "summary": "Change a segment",
            "description": "Only the fields given change (`conditions` replaces them all). "
            "Broadcasts already made keep their recipients.",
            "parameters": [SEGMENT_ID],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("SegmentChange")}},
            },
            "responses": {
                "200": _json(_ref("Segment"), "Saved, with its count and sample."),
                **_errors(*BODY_ERRORS, 404, 409),
            },
        },
        "get": {
            "tags": ["Broadcasts"],
            "operationId": "getSegment",
            "summary": "A segment with its count and a sample",
            "parameters": [SEGMENT_ID],
            "responses": {"200": _json(_ref("Segment"), "The segment."), **_errors(404, 422)},
        },
        "delete": {
            "tags": ["Broadcasts"],
            "operationId": "deleteSegment",
            "summary": "Delete a segment",
            "description": "Broadcasts made from it keep their recipients.",
            "parameters": [SEGMENT_ID],
            "responses": {
                "200": _json(_ref("Segment"), "Deleted; the segment as it was."),
                **_errors(404, 422),
            },
        },
    },
}


def add_broadcast_paths() -> None:
    """Add the broadcasts' and segments' paths and schemas to the document (once)."""
    add_paths(
        PATHS,
        SCHEMAS,
        {"name": "Broadcasts", "description": "One text to many: broadcasts and segments."},
    )
