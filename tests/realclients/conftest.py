"""Real third-party clients (Gammu, smstools' smsd) against `gateway sim` run as a process.

One simulator serves a modem of every family to each client; every client session for every
family starts at once, in threads (the clients spend their time in their own pauses, not on the
CPU), so the whole set takes about as long as its slowest session. Test modules wait for the
sessions they check.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from .gammu_client import GAMMU, GammuSession
from .simproc import FAMILIES, SimProcess, start_sim
from .smsd_client import SMSD, SmsdSession


@pytest.fixture(scope="package")
def sim_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    sim = start_sim(tmp_path_factory.mktemp("realclients-sim"))
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="package")
def sessions(
    sim_process: SimProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, dict[str, Future]]]:
    """{client: {family: Future of its played session}} for the clients of simproc.CLIENTS;
    a client that is not installed has no sessions."""
    base = tmp_path_factory.mktemp("realclients")
    plays = {
        "gammu-info": (GAMMU, lambda s, m, f: GammuSession(s, m, f).play_info),
        "gammu-sms": (GAMMU, lambda s, m, f: GammuSession(s, m, f).play_sms),
        "smsd": (SMSD, lambda s, m, f: SmsdSession(s, m, f).play),
    }
    out: dict[str, dict[str, Future]] = {}
    with ThreadPoolExecutor(len(FAMILIES) * len(plays)) as pool:
        for client, (binary, make) in plays.items():
            if binary is None:
                continue
            out[client] = {}
            for family in FAMILIES:
                folder = base / client / family
                folder.mkdir(parents=True)
                play = make(sim_process, sim_process.modem(client, family), folder)
                out[client][family] = pool.submit(play)
        yield out
