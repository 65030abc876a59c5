"""A client for ``/api/v1`` tests that checks every answer against the OpenAPI document: the
status is one the document lists for that operation, and the body matches its schema (with the
headers it promises: WWW-Authenticate on 401, Retry-After on 429). Every API test goes through
it, so the document is checked against every answer the tests see."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from gateway import __version__
from gateway.web.api import routes  # noqa: F401  (every group adds its paths on import)
from gateway.web.api.openapi import document

DOC = document(__version__)
_TEMPLATES = [
    (re.compile("^/api/v1" + re.sub(r"\{[^}]+\}", r"[^/]+", path) + "$"), path)
    for path in DOC["paths"]
]


def operation_of(method: str, url: str) -> tuple[str, dict[str, Any]] | None:
    """The documented path template and operation for a request, or None."""
    path = url.split("?", 1)[0]
    for pattern, template in _TEMPLATES:
        if pattern.match(path):
            op = DOC["paths"][template].get(method.lower())
            return (template, op) if op is not None else None
    return None


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema and len(schema) == 1:
        name = schema["$ref"].split("/")
        node: Any = DOC
        for part in name[1:]:
            node = node[part]
        schema = node
    return schema


def check_against_document(method: str, url: str, resp: TestResponse) -> str | None:
    """Assert that ``resp`` is what the document says ``method url`` may answer; the path
    template checked, or None for an address the document does not have (then the answer must
    be an error in the API's shape)."""
    found = operation_of(method, url)
    body = resp.get_json(silent=True)
    assert resp.mimetype == "application/json", (method, url, resp.status_code, resp.data[:200])
    if found is None:
        assert resp.status_code in (404, 405), (method, url, resp.status_code)
        jsonschema.validate(body, {**DOC["components"]["schemas"]["Error"]})
        return None
    template, op = found
    documented = op["responses"]
    status = str(resp.status_code)
    assert status in documented, (
        f"{method} {url}: {status} not in the document {sorted(documented)}"
    )
    response = _resolve(documented[status])
    schema = response["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": DOC["components"]})
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{method} {url} {status}: {errors[0].message} at {list(errors[0].path)}"
    for name, header in response.get("headers", {}).items():
        if header.get("required") or resp.status_code in (401, 429):
            assert resp.headers.get(name), f"{method} {url} {status}: no {name} header"
    return template


class ApiClient:
    """Requests to /api/v1 with a token (or none), each answer checked against the document;
    ``seen`` collects (method, template, status) for coverage checks."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        self.token = token
        self.seen: set[tuple[str, str, int]] = set()

    def request(
        self,
        method: str,
        url: str,
        json: Any = None,
        *,
        token: str | bool | None = True,
        **kwargs: Any,
    ) -> TestResponse:
        headers = dict(kwargs.pop("headers", {}))
        use = self.token if token is True else token
        if use:
            headers["Authorization"] = f"Bearer {use}"
        if json is not None:
            kwargs["json"] = json
        resp = self.client.open(url, method=method.upper(), headers=headers, **kwargs)
        template = check_against_document(method, url, resp)
        if template is not None:
            self.seen.add((method.lower(), template, resp.status_code))
        return resp

    def get(self, url: str, **kw: Any) -> TestResponse:
        return self.request("get", url, **kw)

    def post(self, url: str, json: Any = None, **kw: Any) -> TestResponse:
        return self.request("post", url, json, **kw)

    def patch(self, url: str, json: Any = None, **kw: Any) -> TestResponse:
        return self.request("patch", url, json, **kw)

    def delete(self, url: str, **kw: Any) -> TestResponse:
        return self.request("delete", url, **kw)
