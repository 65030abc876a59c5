"""The ``/api/v1`` blueprint with every group of endpoints on it (the app registers ``bp``).
A new group is one more import here (its module adds routes to ``bp`` and paths to the
OpenAPI document)."""

from __future__ import annotations

from . import account, broadcasts, docs, messages, profiles, status  # noqa: F401  (they add the routes)
from .base import bp

__all__ = ["bp"]
