"""``/metrics``: the gateway's figures for Prometheus (gateway/web/metrics.py), answered to an
API token, or to the gateway's own machine when ``metrics.allow_loopback`` is on; the one
decision is :func:`metrics_access`."""

from __future__ import annotations

import ipaddress

from flask import Blueprint, Request, Response, request

from ...config import MetricsConfig
from ..api.tokens import authenticate
from ..context import services
from ..metrics import CONTENT_TYPE, exposition

bp = Blueprint("metrics", __name__)


def is_loopback(address: str | None) -> bool:
    """Whether a peer address is this machine's (127.0.0.0/8, ::1, ::ffff:127.x)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def metrics_access(req: Request, config: MetricsConfig) -> tuple[int, str] | None:
    """The one decision who may read /metrics: None when ``req`` may, else (HTTP status,
    what to do). Off (``metrics.enabled: false``): 404. From loopback with
    ``metrics.allow_loopback``: yes. Otherwise a valid API token (any user's: the figures
    hold counts, never a message or a number)."""
    if not config.enabled:
        return 404, "metrics are off (metrics.enabled: false in the configuration)"
    if config.allow_loopback and is_loopback(req.remote_addr):
        return None
    if authenticate(req) is not None:
        return None
    if req.headers.get("Authorization"):
        return 401, "the API token is not valid (revoked, or mistyped)"
    return 401, (
        "send an API token (Authorization: Bearer TOKEN), or read /metrics on the gateway "
        "itself with metrics.allow_loopback: true"
    )


@bp.get("/metrics")
def metrics() -> Response:
    s = services()
    refused = metrics_access(request, s.config.metrics)
    if refused is not None:
        status, why = refused
        response = Response(why + "\n", status=status, mimetype="text/plain")
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="gateway"'
        return response
    response = Response(exposition(s), mimetype=None, content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
