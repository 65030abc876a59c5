"""Where the daemon's memory is: the ``memory`` op of the control socket
(``gateway memory``), for an admin who sees the resident size grow and for the benchmarks that
measure it (bench/footprint.py --soak).

What it reports, from cheap to costly:

- the process: resident size and its high-water mark, threads (``/proc/self/status``);
- the C heap as glibc sees it (``mallinfo2``): in use, free inside the heap, mapped blocks;
- SQLite's own heap (``sqlite3_memory_used``), and the store's connections (open, pooled);
- with ``GATEWAY_TRACEMALLOC=N`` in the daemon's environment (a debugging aid: tracing costs
  CPU and memory of its own), the Python allocations that grew most since the daemon was up,
  by file and line, N frames deep.

A leaf module but for gateway/memory.py (the C library, loaded once): the store's figures come
from its caller.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import threading
import tracemalloc
from typing import Any

from .memory import glibc

log = logging.getLogger(__name__)

TRACE_ENV = "GATEWAY_TRACEMALLOC"

_baseline: tracemalloc.Snapshot | None = None
_lock = threading.Lock()


class _MallInfo2(ctypes.Structure):
    # glibc >= 2.33, malloc.h: every field a size_t.
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def start_tracing() -> bool:
    """Start tracemalloc when ``GATEWAY_TRACEMALLOC`` asks for it (its value: frames kept per
    allocation, 1 when not a number). Called as early as the daemon can; True when tracing."""
    value = os.environ.get(TRACE_ENV, "").strip()
    if not value or value == "0":
        return False
    frames = int(value) if value.isdigit() else 1
    if not tracemalloc.is_tracing():
        tracemalloc.start(frames)
        log.warning("%s=%s: tracing Python allocations (slower, bigger)", TRACE_ENV, value)
    return True


def mark_baseline() -> None:
    """The snapshot later reports are diffed against (once the daemon is up)."""
    global _baseline
    if tracemalloc.is_tracing():
        with _lock:
            _baseline = tracemalloc.take_snapshot()


def process_status() -> dict[str, int]:
    """Resident size and high-water mark in KiB, and threads, from ``/proc/self/status``
    (empty where there is no /proc)."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(rest.split()[0])
    except OSError as exc:
        log.debug("no /proc/self/status: %s", exc)
    return out


def c_heap() -> dict[str, int] | None:
    """glibc's view of the C heap in bytes (None elsewhere): ``in_use`` (allocated from the
    arenas), ``free`` (held by the arenas, not in use), ``mapped`` (blocks mapped alone)."""
    libc = glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {"in_use": info.uordblks, "free": info.fordblks, "mapped": info.hblkhd}


def sqlite_heap() -> int | None:
    """Bytes SQLite has allocated, all connections together (None when its library cannot be
    reached by name: Python's sqlite3 links it, so it is loaded already)."""
    name = ctypes.util.find_library("sqlite3")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if lib is None or not hasattr(lib, "sqlite3_memory_used"):
        return None
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return int(lib.sqlite3_memory_used())


def top_growth(limit: int = 25) -> list[dict[str, Any]] | None:
    """The Python allocations that grew most since :func:`mark_baseline`, by line (None when
    not tracing)."""
    if not tracemalloc.is_tracing():
        return None
    now = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )
    with _lock:
        base = _baseline
    stats = now.compare_to(base, "lineno") if base is not None else now.statistics("lineno")
    rows = []
    for stat in stats[:limit]:
        frame = stat.traceback[0]
        rows.append(
            {
                "where": f"{frame.filename}:{frame.lineno}",
                "size": stat.size,
                "growth": getattr(stat, "size_diff", stat.size),
                "count": stat.count,
            }
        )
    return rows


def report(store_connections: dict[str, int] | None = None, top: int = 25) -> dict[str, Any]:
    """Everything above as one JSON-able dict (sizes in bytes)."""
    status = process_status()
    out: dict[str, Any] = {
        "rss": status.get("VmRSS", 0) * 1024,
        "rss_peak": status.get("VmHWM", 0) * 1024,
        "threads": status.get("Threads", threading.active_count()),
        "thread_names": _thread_names(),
        "resident": resident_by_kind(),
        "c_heap": c_heap(),
        "sqlite_heap": sqlite_heap(),
        "store_connections": store_connections,
        # Objects frozen at the end of start-up (gateway/memory.py, settle) and the
        # collector's generations now.
        "python_gc": {"frozen": gc.get_freeze_count(), "generations": list(gc.get_count())},
    }
    if tracemalloc.is_tracing():
        traced, peak = tracemalloc.get_traced_memory()
        out["python_traced"] = {"now": traced, "peak": peak, "top_growth": top_growth(top)}
    return out


def _thread_names() -> dict[str, int]:
    """Live threads counted by name, numbers stripped (``web-worker`` rather than each)."""
    counts: dict[str, int] = {}
    for t in threading.enumerate():
        first = t.name.split(" ")[0]
        name = first.rstrip("0123456789").rstrip("-_ ") or first
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def resident_by_kind() -> dict[str, int]:
    """The resident size split by what holds it, in bytes, from ``/proc/self/smaps``: the
    main heap, glibc's other arenas (64 MiB-aligned reservations), thread stacks (the
    8 MiB mappings each thread gets), shared libraries and other files, and other anonymous
    memory (Python's object arenas, blocks mapped alone). Empty where there is no /proc."""
    kinds: dict[str, int] = {}
    current = ""
    try:
        with open("/proc/self/smaps", encoding="ascii", errors="replace") as f:
            for line in f:
                head = line.split(None, 5)
                if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
                    start, end = (int(x, 16) for x in head[0].split("-"))
                    path = head[5].strip() if len(head) > 5 else ""
                    size = end - start
                    if path == "[heap]":
                        current = "main heap"
                    elif path == "[stack]":
                        current = "main stack"
                    elif path.startswith("/"):
                        current = "libraries and files"
                    elif path:
                        current = "kernel"
                    elif size == 8 << 20 or size == (8 << 20) - 4096:
                        current = "thread stacks"
                    elif start % (64 << 20) == 0 and size <= 64 << 20:
                        current = "malloc arenas"
                    else:
                        current = "other anonymous"
                elif head[0] == "Rss:" and current:
                    kinds[current] = kinds.get(current, 0) + int(head[1]) * 1024
    except OSError as exc:
        log.debug("no /proc/self/smaps: %s", exc)
    return kinds
