"""Fixtures for integration tests: a whole daemon over the serial simulator, in-process
(the harness is in harness.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.config import load_config

from .harness import Gateway, make_config


@pytest.fixture(autouse=True)
def _capture_gateway_logs(caplog):
    """A failing test shows what the daemon logged at INFO."""
    caplog.set_level(logging.INFO, logger="gateway")


@pytest.fixture
def start_gateway(tmp_path) -> Iterator[Callable[..., Gateway]]:
    """``start_gateway(**make_config kwargs, web=False)`` -> a started Gateway (stopped after)."""
    started: list[Gateway] = []

    def start(*, web: bool = False, **kwargs: Any) -> Gateway:
        path = make_config(tmp_path, **kwargs)
        gw = Gateway(load_config(path), web=web)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture
def gateway(start_gateway) -> Gateway:
    """The default gateway, every modem up."""
    gw = start_gateway()
    gw.wait_up("a", "b", "c")
    return gw
