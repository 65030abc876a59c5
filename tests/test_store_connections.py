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
