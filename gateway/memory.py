"""How the daemon asks the C allocator (glibc's malloc) to keep its resident size small: the
gateway runs a hundred threads (modems, senders, web workers) on a Pi with 512 MB, and glibc's
defaults are made for throughput on big machines.

- ``M_ARENA_MAX``: glibc gives threads that allocate at the same moment separate arenas, up to
  8 per core; each keeps freed memory for itself, so memory freed by one web worker is not
  reused by another and the resident size creeps up with the number of threads that ever
  allocated. Two arenas are plenty for a gateway whose work is mostly waiting.
- ``M_MMAP_THRESHOLD``: a fixed threshold, so that large blocks (argon2's 7 MiB per password
  check, a big query result) are mapped and given back to the system when freed; glibc's
  default raises the threshold after the first such block is freed, and from then on keeps them
  in the heap of the thread that used them.
- the per-thread cache (``tcache``): each thread keeps up to 7 freed blocks of each of 64 small
  sizes for itself, seen by nobody else and never trimmed. Over the daemon's ~100 threads that
  held ~8 MiB after a day of use (bench/footprint.py --soak: the C heap in use 26.2 MiB with
  it, 18.1 MiB without). glibc reads this setting only from the environment at the process's
  start (``GLIBC_TUNABLES``), so ``gateway run`` starts itself again with it
  (:func:`restart_with_tunables`), once, before anything else is loaded.
- the same restart runs Python with ``PYTHONOPTIMIZE=2`` (``-OO``) when the compiled files of
  that level are installed or can be written: docstrings (Flask's, Werkzeug's, Jinja's and the
  gateway's own) are then never loaded, 1.9 MiB less resident (``assert`` statements are left
  out too; the gateway's are type hints for readers, none checks input).
- :func:`give_back` (``malloc_trim``): after a burst (an export, many logins) the free memory at
  the top of each arena and in its free pages goes back to the system; :class:`Trimmer` does
  it a few seconds after any work (:func:`after_work`: a web request, an inbound SMS, a sent
  message), on a thread that otherwise sleeps on an event. Before each trim it collects the
  burst's cyclic garbage (request contexts, exceptions with their tracebacks), which Python's
  own collector would leave for its rare full collections while it pins Python's memory
  arenas; and once, when it starts, it freezes what start-up made (:func:`settle`), so that
  these collections walk only what came after: 1–8 ms each instead of 20–60 ms.

Each is a no-op (returning False) where the C library is not glibc (musl hands memory back on
its own).

A leaf module: nothing of the gateway is imported here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import importlib.util
import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
NO_TCACHE = "glibc.malloc.tcache_count=0"
LARGE_BLOCK = 1 << 20  # blocks of this size and more are mapped, and unmapped when freed
ARENAS = 2


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """The C library when it has glibc's mallopt and malloc_trim, else None (looked up once)."""
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError as exc:
        log.debug("no C library to tune: %s", exc)
        return None
    if lib is None or not (hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim")):
        return None
    return lib


def return_large_blocks() -> bool:
    """Map blocks of 1 MiB and more, and give them back when freed (``M_MMAP_THRESHOLD``).

    Measured before: 16 password checks (then 19 MiB each) on 16 server threads kept ~300 MiB
    resident for good, however few ran at once; with a fixed threshold the resident size
    returns to where it was after each check."""
    libc = glibc()
    if libc is None:
        log.debug("no mallopt in the C library; large blocks are left to its defaults")
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK))


def tune() -> bool:
    """At the daemon's start, before its threads: at most :data:`ARENAS` malloc arenas, and
    large blocks returned (:func:`return_large_blocks`). True when the C library took both."""
    libc = glibc()
    if libc is None:
        return False
    arenas = bool(libc.mallopt(M_ARENA_MAX, ARENAS))
    return return_large_blocks() and arenas


def give_back() -> bool:
    """Return the allocator's free memory to the system (``malloc_trim(0)``): after an export
    or a burst of logins. True when some was returned."""
    libc = glibc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))


RESTARTED = "GATEWAY_RESTARTED"  # set by the restart: never a second one
OPTIMIZE = "2"  # PYTHONOPTIMIZE's level: docstrings and asserts left out


def optimized_code_ready(modules: tuple[str, ...] = ("flask", "gateway")) -> bool:
    """True when ``-OO``'s compiled files of ``modules`` are there or can be written next to
    their sources. Without them every start would compile every module again (seconds on a
    Pi): a read-only install (``/opt/gateway`` under systemd's ``ProtectSystem=strict``) that
    was not compiled for it (docs/install.md) runs unoptimized instead."""
    for name in modules:
        spec = importlib.util.find_spec(name)  # a top-level name: nothing of it is imported
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return False
        cached = importlib.util.cache_from_source(spec.origin, optimization=OPTIMIZE)
        if os.path.exists(cached):
            continue
        if sys.dont_write_bytecode:
            return False
        folder = os.path.dirname(cached)
        if not os.access(folder if os.path.isdir(folder) else os.path.dirname(folder), os.W_OK):
            return False
    return True


def settle() -> int:
    """The end of start-up: collect its garbage, then move every object left (modules, the
    app, its caches) to the collector's permanent generation (``gc.freeze``), never walked
    again. Returns the objects collected."""
    collected = gc.collect()
    gc.freeze()
    return collected


def restart_with_tunables() -> None:
    """Start this process again (same pid, arguments and descriptors: ``exec``) with glibc's
    per-thread caches off (:data:`NO_TCACHE` in ``GLIBC_TUNABLES``) and, when
    :func:`optimized_code_ready`, with ``PYTHONOPTIMIZE=2``, unless both are so already (or
    cannot be: not glibc, no compiled files). Returns only when nothing was done.

    Only for the process that runs ``gateway run`` or ``gateway demo`` as its program (not a
    test calling the command's function); the settings stay in the environment, so the
    second start does not restart again, and a systemd unit may set them itself."""
    if os.environ.get(RESTARTED):
        return
    if not getattr(sys, "orig_argv", None) or os.path.basename(sys.argv[0]) not in (
        "gateway",
        "cli.py",
    ):
        return
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    tcache = "glibc.malloc.tcache_count" not in tunables and glibc() is not None
    optimize = sys.flags.optimize < int(OPTIMIZE) and optimized_code_ready()
    if not (tcache or optimize):
        return
    if tcache:
        os.environ["GLIBC_TUNABLES"] = f"{tunables}:{NO_TCACHE}" if tunables else NO_TCACHE
    if optimize:
        os.environ["PYTHONOPTIMIZE"] = OPTIMIZE
    os.environ[RESTARTED] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


TRIM_DELAY = 5.0  # seconds from the first work after a trim to the next trim


class Trimmer:
    """Gives the C heap's free memory back (:func:`give_back`) :data:`TRIM_DELAY` seconds
    after work was done, at most once per that delay while the gateway is busy, and never
    while it is idle: its thread waits on an event (no polling). In the daemon's own process
    (``whole_process``) it also freezes start-up's objects when it starts (:func:`settle`)
    and collects cyclic garbage before each trim.

    Measured with 8 modems after 0.3 of a day (bench/footprint.py --soak): 6.7 MiB free in
    the heaps and 4.7 MiB of resident size given back by one trim at the end. A trim walks
    the heaps' free blocks while holding their locks: ~1 ms here, hence not after every
    request."""

    def __init__(self, delay: float = TRIM_DELAY, *, whole_process: bool = False) -> None:
        self.delay = delay
        self.whole_process = whole_process  # the process is the gateway's own, not a test's
        self._work = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.trims = 0  # trims done (for tests)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="memory-trim", daemon=True)
        self._thread.start()

    def touch(self) -> None:
        """Work was done: trim within :attr:`delay` seconds."""
        self._work.set()

    def stop(self) -> None:
        self._stop.set()
        self._work.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        if self.whole_process:
            settle()
        while True:
            self._work.wait()
            if self._stop.wait(self.delay):
                return
            self._work.clear()  # work from here on asks for the next trim
            if self.whole_process:
                gc.collect()
            give_back()
            self.trims += 1


_trimmer: Trimmer | None = None


def start_trimmer(delay: float = TRIM_DELAY, *, whole_process: bool = False) -> Trimmer:
    """The daemon's :class:`Trimmer` (one per process), started; ``whole_process`` when the
    daemon is the whole process (``gateway run``), not a test's guest."""
    global _trimmer
    if _trimmer is None:
        _trimmer = Trimmer(delay, whole_process=whole_process)
        _trimmer.start()
    return _trimmer


def stop_trimmer() -> None:
    global _trimmer
    trimmer, _trimmer = _trimmer, None
    if trimmer is not None:
        trimmer.stop()


def after_work() -> None:
    """Some work was done (a request served, an SMS stored or sent): the trimmer, when the
    daemon runs one, gives the memory it freed back in a few seconds. Cheap: sets an event."""
    trimmer = _trimmer
    if trimmer is not None:
        trimmer.touch()
