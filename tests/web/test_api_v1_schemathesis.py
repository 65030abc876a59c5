"""Schemathesis against the REST API, in-process over WSGI: generated requests, valid and not,
for every operation in /api/v1/openapi.json, with an agent's token, must get no server error and
no answer the document does not allow (status, content type, headers, body schema); a valid
request must not be refused for its shape, nor an invalid one accepted. A few dozen examples
per operation and mode in the normal run; `pytest --long` runs many more."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from flask import request
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateway.config import parse_config

from .conftest import CONFIG, Web

pytestmark = pytest.mark.slow

NORMAL_EXAMPLES = 60
LONG_EXAMPLES = 300


@pytest.fixture
def api_app(tmp_path) -> Iterator[Web]:
    web = Web(tmp_path)
    web.use(parse_config(CONFIG.format(data_dir=tmp_path) + "api: {rate_per_minute: 0}\n"))
    # Something to find: a profile (id 1) and a message to it (id 1).
    web.outbox.submit("hello", to="+15551230001")
    yield web
    web.store.close()


def _operations(web: Web, token: str | None = None):
    # The token goes in as the document's security scheme, so that schemathesis knows it is
    # the credential (and what leaving it out means), rather than as a header it may mutate.
    auth = {"auth": {"openapi": {"bearer": {"bearer": token}}}} if token else {}
    # A body over the size limit is rejected with 413, as it should be (not a listed default).
    rejected = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
    checks = {"checks": {"negative_data_rejection": {"expected-statuses": rejected}}}
    config = SchemathesisConfig.from_dict({**auth, **checks})
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", web.app, config=config)
    return [result.ok() for result in schema.get_all_operations()]


def test_schemathesis_finds_every_operation(api_app: Web) -> None:
    labels = {op.label for op in _operations(api_app)}
    assert "POST /messages" in labels and "PATCH /profiles/{id}" in labels
    doc = api_app.app.test_client().get("/api/v1/openapi.json").json
    documented = {f"{m.upper()} {path}" for path, ms in doc["paths"].items() for m in ms}
    # Schemathesis leaves out the document's own address.
    assert labels == documented - {"GET /openapi.json"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_no_answer_outside_the_document(api_app: Web, mode, long_run):
    token = api_app.store.api_tokens.create("agent", "schemathesis").secret
    answered: Counter[tuple[str, int]] = Counter()
    by_rule: dict[tuple[str, str], set[int]] = {}

    @api_app.app.after_request
    def record(response):
        if request.path.startswith("/api/v1/"):
            answered[(request.method, response.status_code)] += 1
            rule = request.url_rule.rule if request.url_rule is not None else ""
            by_rule.setdefault((request.method, rule), set()).add(response.status_code)
        return response

    failures: list[str] = []
    for op in _operations(api_app, token):

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(
            max_examples=LONG_EXAMPLES if long_run else NORMAL_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=not long_run,
            database=None,
        )
        def run(case) -> None:
            # Every check but "a schema-valid request is accepted": the document gives shapes,
            # and a well-shaped request may still be refused for its meaning (422: a number
            # that does not exist, an unknown short code, a profile that opted out).
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        try:
            run()
        except (AssertionError, FailureGroup) as exc:  # every operation's failures, then all
            failures.append(f"{op.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    # The token was used: requests got through to the endpoints, not only 401s.
    if mode == GenerationMode.POSITIVE:
        # (Generated phone numbers are seldom real ones: sends and new profiles mostly get 422
        # for their meaning, which is as it should be; test_api_v1.py sends real ones.)
        assert answered[("GET", 200)] > 50 and answered[("POST", 422)] > 0, answered
        assert answered[("PATCH", 200)] > 0 and answered[("DELETE", 200)] > 0, answered
        # Broadcasts and segments: generated bodies reach the endpoints and are judged there.
        assert 200 in by_rule[("GET", "/api/v1/broadcasts")], by_rule
        assert 201 in by_rule[("POST", "/api/v1/segments")], by_rule
        assert 200 in by_rule[("GET", "/api/v1/segments")], by_rule
        assert 422 in by_rule[("POST", "/api/v1/broadcasts")], by_rule
        for action in ("pause", "resume", "cancel"):
            assert 404 in by_rule[("POST", f"/api/v1/broadcasts/<int:broadcast_id>/{action}")]
    else:
        assert sum(n for (_, status), n in answered.items() if status == 422) > 50, answered
