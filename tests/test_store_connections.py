"""The store keeps one connection per live thread, not one per thread that ever used it."""

from __future__ import annotations

import os
import threading

from gateway.store import Store


def test_connections_of_finished_threads_are_closed(tmp_path) -> None:
    store = Store.open(tmp_path)
    try:
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(200):  # e.g. one thread per control-socket request
            t = threading.Thread(target=store.profiles.count)
            t.start()
            t.join()
        store.profiles.count()
        assert len(store.db._all) <= 2
        assert len(os.listdir("/proc/self/fd")) < before + 10
    finally:
        store.close()


def test_a_released_connection_serves_the_next_thread_and_the_pool_is_bounded(tmp_path) -> None:
    """The web app's threads (74) and the modems' give their connection back after each
    request or SMS: the next thread takes it instead of opening its own, at most
    IDLE_CONNECTIONS are kept, and close() closes those too."""
    from gateway.store.db import IDLE_CONNECTIONS

    store = Store.open(tmp_path)
    try:
        used: list[object] = []
        start = threading.Barrier(IDLE_CONNECTIONS + 3)

        def request() -> None:
            start.wait(10)  # all at once: each needs a connection of its own
            store.profiles.count()
            used.append(store.db.conn)
            start.wait(10)
            store.release_connection()

        threads = [threading.Thread(target=request) for _ in range(IDLE_CONNECTIONS + 3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(map(id, used))) == IDLE_CONNECTIONS + 3
        assert len(store.db._idle) == IDLE_CONNECTIONS  # the rest were closed

        seen: list[object] = []
        t = threading.Thread(target=lambda: (store.profiles.count(), seen.append(store.db.conn)))
        t.start()
        t.join()
        assert seen[0] in used  # reused, not a new one

        # Inside a transaction the connection stays with its thread.
        with store.db.tx():
            store.release_connection()
            assert getattr(store.db._local, "conn", None) is not None
    finally:
        store.close()
    assert store.db._idle == []
