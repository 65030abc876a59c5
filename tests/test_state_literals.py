"""No message, part or agent-queue state is written as a bare word outside its enum
(gateway/store/states.py): a scan of the source for the words of those machines where code
compares, assigns or stores a state, and in the templates' comparisons. The browser's
JavaScript reads the same words from the server's JSON and is not scanned."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from gateway.store.states import AgentState, MessageStatus, PartStatus, PathState

ROOT = Path(__file__).resolve().parents[1] / "gateway"
WORDS = {s.value for machine in (MessageStatus, PartStatus, AgentState, PathState) for s in machine}
_WORD = "|".join(sorted(WORDS))
# An SQL literal: "status = 'queued'", "IN ('open', 'claimed')", "VALUES (..., 'queued'".
SQL_LITERAL = re.compile(rf"(?:=|\bIN\s*\(|,)\s*'({_WORD})'", re.IGNORECASE)
TEMPLATE_LITERAL = re.compile(rf"(?:==|!=|\bin\s*\(|,|=)\s*'({_WORD})'")
STATE_NAMES = {"status", "state", "agent_state"}

# Files whose words are not these machines' states, or may not change.
NOT_SCANNED = {
    "store/states.py",  # the enums themselves
    "store/migrations.py",  # released migrations are never edited (migration 1's DEFAULT)
}
NOT_SCANNED_DIRS = ("modem/",)  # the codec's report categories, the simulator's handsets
# Left for the helper that moves these queries into store/ (issue 9, "one owner per table").
ALLOWED_SQL: set[str] = set()


def _strs(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [v for e in node.elts for v in _strs(e)]
    if isinstance(node, ast.IfExp):
        return _strs(node.body) + _strs(node.orelse)
    return []


def _findings(path: Path, rel: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        words: list[str] = []
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                words += _strs(side)
        elif isinstance(node, ast.keyword) and node.arg in STATE_NAMES:
            words += _strs(node.value)
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if k is not None and _strs(k) and _strs(k)[0] in STATE_NAMES:
                    words += _strs(v)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.Return):
            target = getattr(node, "targets", None) or [getattr(node, "target", None)]
            names = {t.id for t in target if isinstance(t, ast.Name)}
            if names & STATE_NAMES or isinstance(node, ast.Return):
                words += _strs(node.value) if node.value is not None else []
        elif isinstance(node, ast.Call):
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if callee in {"set_agent_state", "fail", "_announce", "_changed"}:
                words += [w for a in node.args for w in _strs(a)]
        sql = rel not in ALLOWED_SQL
        if sql and isinstance(node, ast.Constant) and isinstance(node.value, str):
            words += SQL_LITERAL.findall(node.value)
        found += [f"{rel}:{node.lineno}: {w!r}" for w in words if w in WORDS]
    return found


def test_no_state_is_a_bare_word_in_the_python_source() -> None:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in NOT_SCANNED or rel.startswith(NOT_SCANNED_DIRS):
            continue
        found += _findings(path, rel)
    assert found == [], "name these states by their enum (gateway/store/states.py):\n" + "\n".join(
        found
    )


def test_no_state_is_a_bare_word_in_the_templates() -> None:
    found = []
    for path in sorted((ROOT / "web" / "templates").rglob("*.html")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            # A status report's category is the codec's word, not a message's state.
            line = re.sub(r"report_category\s*==\s*'\w+'", "", line)
            found += [f"{path.name}:{n}: {w!r}" for w in TEMPLATE_LITERAL.findall(line)]
    assert found == [], "\n".join(found)


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f(row, store):\n"
        '    if row["status"] == "queued":\n'
        '        store.set_agent_state(1, "open")\n'
        '    status = "sent" if row else "failed"\n'
        "    store.db.q(\"SELECT 1 FROM messages WHERE status IN ('queued', 'sending')\")\n"
        '    return {"status": "expired"}\n',
        encoding="utf-8",
    )
    found = _findings(sample, "sample.py")
    words = sorted(f.rsplit(" ", 1)[1].strip("'") for f in found)
    assert words == ["expired", "failed", "open", "queued", "queued", "sending", "sent"]
