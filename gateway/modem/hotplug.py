"""Noticing serial devices that appear and disappear, without polling: Linux inotify (through
ctypes, no extra dependency) on the folders the scan patterns name, e.g. ``/dev`` and
``/dev/serial/by-id``. Where inotify is not available, :meth:`HotplugWatcher.wait` simply
sleeps its timeout and reports a possible change, so callers fall back to periodic scans.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import threading
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

IN_ATTRIB = 0x00000004
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_MOVED_FROM = 0x00000040
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_MASK = IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB


def watch_dirs(patterns: Iterable[str]) -> list[Path]:
    """The folders to watch for ports matching glob ``patterns``: each pattern's folder, or its
    nearest existing parent (``/dev/serial/by-id`` exists only while a USB serial device does)."""
    out: list[Path] = []
    for pattern in patterns:
        folder = Path(pattern).parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if folder not in out:
            out.append(folder)
    return out


class HotplugWatcher:
    """Wakes waiters when a watched folder changes; a generation counter says whether it did."""

    def __init__(self, dirs: Iterable[Path]) -> None:
        self.dirs = list(dirs)
        self._fd: int | None = None
        self._libc = None
        self._cond = threading.Condition()
        self.generation = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "inotify_init1 failed")
            for folder in self.dirs:
                # Watch the folder and, for "by-id" style folders that may appear later, the
                # parent too (a new /dev/serial shows up as a create event in /dev).
                for target in {folder, folder.parent}:
                    if target.exists():
                        libc.inotify_add_watch(fd, os.fsencode(str(target)), _MASK)
        except (OSError, AttributeError) as exc:
            log.info("no inotify (%s): modem hot-plug is noticed by periodic scans", exc)
            return
        self._libc, self._fd = libc, fd
        self._thread = threading.Thread(target=self._run, name="hotplug", daemon=True)
        self._thread.start()

    @property
    def active(self) -> bool:
        return self._fd is not None

    def _run(self) -> None:
        assert self._fd is not None
        r, w = os.pipe()
        self._wakeup = w
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._fd, r], [], [])
                if r in ready:
                    return
                try:
                    os.read(self._fd, 65536)
                except BlockingIOError:
                    continue
                # Re-add watches for folders that may have just been created (/dev/serial/by-id).
                for folder in self.dirs:
                    if folder.exists():
                        self._libc.inotify_add_watch(self._fd, os.fsencode(str(folder)), _MASK)
                self.notify()
        finally:
            os.close(r)

    def notify(self) -> None:
        """Count a change and wake every waiter (also for tests and manual rescans)."""
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float | None) -> int:
        """Block until the generation moves past ``seen`` or ``timeout``; return the current
        generation. Without inotify, returns after the timeout as if something changed."""
        with self._cond:
            if self._fd is None and timeout is not None:
                self._cond.wait(timeout)
                self.generation += 1
                return self.generation
            self._cond.wait_for(lambda: self.generation != seen or self._stop.is_set(), timeout)
            return self.generation

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._fd is not None:
            try:
                os.write(self._wakeup, b"x")
            except (OSError, AttributeError) as exc:
                log.debug("hotplug wakeup: %s", exc)
            if self._thread is not None:
                self._thread.join(2)
            os.close(self._fd)
            self._fd = None
