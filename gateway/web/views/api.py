"""JSON API and the server-sent event stream used by the pages' scripts."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")
