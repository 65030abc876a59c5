"""The web pages over a large store: p50/p95 per page at 100,000 profiles and 1,000,000
messages, and the two CSV exports' time and memory.

The store is filled once by tests/scale/fill.py and kept in ``--cache-dir`` (one per size and
schema version; a store of the previous schema is copied and migrated, which times the
migration). Pages are served in-process through Flask's test client (no HTTP, no network),
logged in as an admin; the time is the whole request: queries and rendering. Each export runs in
a child process of its own, so that its peak RSS is its own.

    .venv/bin/python bench/store_pages.py [--profiles 100000] [--messages 1000000] [--runs 20]
        [--cache-dir /tmp/gateway-bench-store] [--json out.json]

Runs against older code too (``PYTHONPATH=<older tree>``): pages that the older code reads by
page number (``?page=1000``) are asked for that way, and the newer code's by the row before.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from scale.fill import SHORT_CODES, Shape, fill  # noqa: E402
from scale.harness import ScaleApp  # noqa: E402

from gateway.store import Store, migrations  # noqa: E402

try:
    from gateway.store import search as _keyset  # noqa: F401

    KEYSET = True
except ImportError:  # the code from before keyset pages
    KEYSET = False

EXPORT_LIMIT_S = 120.0


def schema_version() -> int:
    return migrations.MIGRATIONS[-1][0]


def store_dir(cache: Path, shape: Shape, version: int) -> Path:
    return cache / f"p{shape.profiles}-m{shape.messages}-s{shape.seed}-v{version}"


def prepare(cache: Path, shape: Shape) -> tuple[Path, dict]:
    """The filled store's directory (made when missing) and what making it took."""
    version = schema_version()
    target = store_dir(cache, shape, version)
    info: dict = {}
    if (target / "ready").exists():
        return target, info
    shutil.rmtree(target, ignore_errors=True)
    older = store_dir(cache, shape, version - 1)
    if (older / "ready").exists():
        target.mkdir(parents=True)
        shutil.copy2(older / "gateway.sqlite3", target / "gateway.sqlite3")
        start = time.perf_counter()
        Store.open(target).close()
        info["migration_s"] = round(time.perf_counter() - start, 1)
        shutil.rmtree(target / "backups", ignore_errors=True)  # the copy taken before migrating
    else:
        Store.open(target).close()
        start = time.perf_counter()
        fill(target / "gateway.sqlite3", shape)
        info["fill_s"] = round(time.perf_counter() - start, 1)
    (target / "ready").touch()
    info["size_mb"] = round((target / "gateway.sqlite3").stat().st_size / 1e6)
    return target, info


def pages(app: ScaleApp) -> dict[str, str]:
    """The URL of each page measured."""
    conn = app.store.db.conn
    newest_in = conn.execute(
        "SELECT id FROM messages WHERE direction = 'in' ORDER BY id DESC LIMIT 1 OFFSET 3"
    ).fetchone()[0]
    urls = {
        "Home": "/home",
        "Inbox": "/inbox",
        "Inbox live rows (JSON)": f"/api/inbox?after={newest_in}",
        'Messages, text search "bus"': "/messages?q=bus",
        "Messages, direction + short code": f"/messages?direction=in&short_code={SHORT_CODES[3]}",
        "Messages, status = failed": "/messages?status=failed",
        "Messages, first page": "/messages",
    }
    # Page 1000 of messages and 500 of profiles, or halfway down a store too small for them.
    messages = conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]
    profiles = conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
    message_page = min(1000, messages // 100)
    profile_page = min(500, profiles // 100)
    if KEYSET:
        deep = conn.execute(
            "SELECT id FROM messages ORDER BY id DESC LIMIT 1 OFFSET ?", (50 * message_page - 51,)
        ).fetchone()[0]
        urls["Messages, page 1000"] = f"/messages?before={deep}"
        cursor = conn.execute(
            "SELECT id FROM profiles ORDER BY name COLLATE NOCASE, id LIMIT 1 OFFSET ?",
            (50 * profile_page - 51,),
        ).fetchone()[0]
        urls["Profiles, page 500"] = f"/profiles?after={cursor}"
        urls["Profiles, last page"] = "/profiles?last=1"
    else:
        urls["Messages, page 1000"] = f"/messages?page={message_page}"
        urls["Profiles, page 500"] = f"/profiles?page={profile_page}"
        urls["Profiles, last page"] = f"/profiles?page={-(-profiles // 50)}"
    # Beyond the table: where the indexes help least.
    urls['Messages, search "the" (common word)'] = "/messages?q=the"
    urls["Messages, kind = help + short code"] = f"/messages?kind=help&short_code={SHORT_CODES[15]}"
    urls['Profiles, search "smith"'] = "/profiles?q=smith"
    return urls


def measure_pages(app: ScaleApp, runs: int) -> dict[str, dict]:
    client = app.client()
    results = {}
    for name, url in pages(app).items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            resp = client.get(url)
            resp.get_data()
            times.append((time.perf_counter() - start) * 1000)
            if resp.status_code != 200:
                raise SystemExit(f"{name}: {url} answered HTTP {resp.status_code}")
        times.sort()
        results[name] = {
            "url": url,
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[max(0, int(len(times) * 0.95 + 0.5) - 1)], 1),
        }
        print(
            f"  {name:<36} p50 {results[name]['p50_ms']:>8} ms  p95 {results[name]['p95_ms']:>8} ms"
        )
    return results


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (``VmRSS``) or its peak (``VmHWM``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> None:
    """Start the peak (VmHWM) afresh: the login's password hash (argon2) took more memory
    than the export should be charged with."""
    Path("/proc/self/clear_refs").write_text("5")


def export_child(data_dir: Path, which: str) -> None:
    """Run one export in this (child) process and print its figures as JSON."""
    app = ScaleApp(data_dir)
    client = app.client()
    url = "/profiles/export.csv" if which == "profiles" else "/messages/export.csv"
    before = rss_mb()
    reset_peak()
    start = time.perf_counter()
    resp = client.get(url, buffered=False)
    size = rows = 0
    for chunk in resp.response:
        size += len(chunk)
        rows += chunk.count(b"\n")
    seconds = time.perf_counter() - start
    resp.close()
    peak = rss_mb("VmHWM")
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "rows": rows - 1,
                "mb": round(size / 1e6, 1),
                "rss_before_mb": round(before, 1),
                "rss_peak_mb": round(peak, 1),
                "rss_after_mb": round(rss_mb(), 1),
            }
        )
    )


def measure_export(data_dir: Path, which: str) -> dict:
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--export-child", which, "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=EXPORT_LIMIT_S,
            check=True,
        ).stdout
    except subprocess.TimeoutExpired:
        return {"seconds": None, "note": f"did not finish in {EXPORT_LIMIT_S:.0f} s"}
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"the {which} export failed:\n{exc.stderr}") from exc
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/gateway-bench-store"))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--no-export", action="store_true", help="pages only")
    parser.add_argument("--export-child", choices=("profiles", "messages"), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(args.data_dir, args.export_child)
        return
    shape = Shape(profiles=args.profiles, messages=args.messages)
    data_dir, made = prepare(args.cache_dir, shape)
    print(f"store: {data_dir} {made or '(cached)'}; keyset pages: {KEYSET}")
    # Each run starts from a copy, so that the cached store is never changed (logins write).
    work = args.cache_dir / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy2(data_dir / "gateway.sqlite3", work / "gateway.sqlite3")
    app = ScaleApp(work)
    app.client().get("/home")  # warm the page cache once
    print(f"pages ({args.runs} runs each):")
    figures = {"shape": shape.__dict__, "keyset": KEYSET, "store": made, "pages": {}}
    figures["pages"] = measure_pages(app, args.runs)
    app.close()
    if not args.no_export:
        for which in ("profiles", "messages"):
            result = measure_export(work, which)
            figures[f"export_{which}"] = result
            print(f"  {which} CSV export: {result}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
