"""The daemon's trimmer (gateway/memory.py): gives memory back after work, and sleeps on an
event otherwise."""

from __future__ import annotations

import threading

from gateway.memory import Trimmer


def test_work_is_followed_by_one_trim_and_stop_ends_the_thread() -> None:
    trimmer = Trimmer(delay=0.01)
    trimmer.start()
    try:
        assert trimmer.trims == 0  # no work yet: nothing done
        trimmer.touch()
        trimmer.touch()  # work close together asks for one trim
        done = threading.Event()

        def watch() -> None:
            while trimmer.trims == 0:
                if done.wait(0.005):
                    return
            done.set()

        threading.Thread(target=watch, daemon=True).start()
        assert done.wait(5), "no trim after work"
    finally:
        trimmer.stop()
    assert trimmer._thread is not None and not trimmer._thread.is_alive()
