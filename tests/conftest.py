"""Fixtures for the whole suite."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its real cost takes most of a second per hash; tests check behaviour, not
    cost, so users created in tests get the cheapest valid parameters (whatever the store
    asks for; tests/security measures the real ones)."""
    monkeypatch.setattr(
        "gateway.store.users.PasswordHasher",
        lambda **_real: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the full-size soaks, fuzzing and data sets (minutes to hours) instead of the "
        "small versions that the normal run uses",
    )


@pytest.fixture(scope="session")
def long_run(request: pytest.FixtureRequest) -> bool:
    """True under `pytest --long`: tests size their loops, kills and data sets by it."""
    return bool(request.config.getoption("--long"))
