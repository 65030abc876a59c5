"""The REST API under ``/api/v1`` (docs/api.md): per-user tokens, JSON in and out, errors as
``{"error": {"code", "message", "field"}}``, a rate limit per token, and an OpenAPI 3.1
description at ``/api/v1/openapi.json``.

``routes.py`` gathers the endpoint modules onto the one blueprint of ``base.py``; a new group
(broadcasts, segments) is a module imported there with its paths added to ``openapi.py``'s
document, nothing else. ``tokens.authenticate`` is the one check of a bearer token, also for
endpoints outside the API (``/metrics``). Nothing is imported here, so that the app's context
module can use ``ratelimit`` without loading the endpoints.
"""
