"""``/api/v1/openapi.json``: the API's description, for anyone (it holds no data)."""

from __future__ import annotations

from flask import jsonify

from ... import __version__
from .base import bp
from .openapi import document


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document(__version__))
