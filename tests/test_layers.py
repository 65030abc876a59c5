"""The import rule of docs/design.md, checked on the source: each layer imports only downward
(web → messaging → store, modem), so a reader finds a change's place from the folder names and
no layer learns what a higher one does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "gateway"

# What each package may import from the rest of gateway (its own package is always allowed): a
# package by name, or one module of it by its dotted name.
ALLOWED: dict[str, set[str]] = {
    # The driver never imports the simulator: it must not know whether a modem is real.
    "modem": {"modem"},
    # The simulator is a client of the codec alone (PDUs and texts it builds and reads), never
    # of the driver, the manager or anything above.
    "sim": {"sim", "modem.pdu", "modem.text", "modem.alphabets", "modem.errors"},
    "store": {"store"},
    "config": {"config", "phone"},
    "messaging": {"messaging", "store", "modem", "config", "phone"},
    # gateway/memory.py is a leaf (the C allocator's settings): the server sets them too.
    "web": {"web", "messaging", "store", "config", "phone", "memory"},
}
# Named exceptions, each with its reason.
EXCEPTIONS: dict[str, set[str]] = {
    # The demo's Phones page is a front of the simulator's control API.
    "web/views/phones.py": {"sim"},
    # The web app is handed the gateway's services, built once in gateway/services.py (which
    # sits above the layers, beside the daemon); the views read them through this module only.
    "web/context.py": {"services"},
    # The store keeps the concatenation reference counters; the rule for the next one
    # (random start, then +1 modulo 2^bits) is the codec's (modem.refs.step).
    "store/records.py": {"modem.refs"},
}


def _gateway_imports(path: Path) -> set[str]:
    """The gateway modules a file imports, as dotted names below gateway (``modem.pdu``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                name = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("gateway."):
                name = node.module.removeprefix("gateway.")
            else:
                continue
            if name and (ROOT / name.replace(".", "/")).is_dir():
                # "from gateway.modem import pdu": the module is what is imported.
                found |= {f"{name}.{a.name}" for a in node.names}
            else:
                found.add(name)
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("gateway.") for a in node.names if a.name.startswith("gateway.")
            }
    return {n for n in found if n}


def _files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] in ALLOWED)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_downward(path: Path) -> None:
    rel = path.relative_to(ROOT)
    layer = rel.parts[0]
    allowed = ALLOWED[layer]
    extra = EXCEPTIONS.get(rel.as_posix(), set())
    wrong = sorted(
        name
        for name in _gateway_imports(path)
        if not any(name == e or name.startswith(e + ".") for e in allowed | extra)
    )
    assert wrong == [], f"{rel} ({layer}) imports {wrong}; allowed: {sorted(allowed)}"


def test_the_driver_never_imports_the_simulator() -> None:
    # Also the rule above; named here because it is the one that keeps the simulator a stand-in.
    for path in sorted((ROOT / "modem").rglob("*.py")):
        wrong = sorted(n for n in _gateway_imports(path) if n == "sim" or n.startswith("sim."))
        assert wrong == [], f"{path.relative_to(ROOT)} imports the simulator: {wrong}"
