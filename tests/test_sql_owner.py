"""All SQL lives in gateway/store/, behind methods named for what they mean (docs/design.md,
"One owner for each table"), checked on the source: outside store/ no file runs a statement on a
database or connection, opens one with sqlite3, or holds SQL in a string. A second database
backend is then a new store/ module, not a hunt through the tree. No file is exempt."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "gateway"

# Methods that run SQL: sqlite3's own and store.db.Database's helpers.
RUNS_SQL = {"execute", "executemany", "executescript", "q", "q1", "value"}
# What a database or connection is called where it is held (``store.db``, ``conn``, ...);
# other objects may have an ``execute`` (the simulator's AT interpreter has one).
DB_NAMES = re.compile(r"^_?(db|database|conn|connection|con|cur|cursor|sqlite|sqlite3)$", re.I)
# A statement's shape, not a lone word: "SELECT ... FROM", "INSERT INTO", "UPDATE x SET",
# "DELETE FROM", "CREATE TABLE/INDEX", "PRAGMA x". Docstrings are prose and not checked.
SQL = re.compile(
    r"\bSELECT\b[\s\S]*?\bFROM\s+[A-Za-z_]\w*"
    r"|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\s+\w"
    r"|\bUPDATE\s+[A-Za-z_]\w*\s+SET\b"
    r"|\bDELETE\s+FROM\s+\w"
    r"|\bCREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX|VIEW|TRIGGER)\b"
    r"|\bPRAGMA\s+[a-z_]+",
    re.IGNORECASE,
)


def _files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] != "store")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings (of the module, a class or a function)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _receiver_name(node: ast.expr) -> str | None:
    """The last name of the object a method is called on (``store.db.q`` → ``db``)."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):  # sqlite3.connect(...).execute(...)
        return _receiver_name(node.func)
    return None


def sql_outside_store(source: str) -> list[str]:
    """Each place in ``source`` that runs SQL or holds a statement, as ``line: what``."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, receiver = node.func.attr, _receiver_name(node.func.value)
            if method in RUNS_SQL and receiver and DB_NAMES.match(receiver):
                found.append(f"{node.lineno}: {receiver}.{method}(...)")
            elif method == "connect" and receiver == "sqlite3":
                found.append(f"{node.lineno}: sqlite3.connect(...)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docs:
                continue
            match = SQL.search(node.value)
            if match:
                found.append(f"{node.lineno}: SQL {match.group(0)[:60]!r}")
        elif isinstance(node, ast.JoinedStr):  # an f-string: its literal pieces joined
            text = "".join(
                v.value if isinstance(v, ast.Constant) else "x"
                for v in node.values
                if isinstance(v, ast.Constant | ast.FormattedValue)
            )
            match = SQL.search(text)
            if match:
                found.append(f"{node.lineno}: SQL {match.group(0)[:60]!r}")
    return found


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_sql_outside_store(path: Path) -> None:
    found = sql_outside_store(path.read_text(encoding="utf-8"))
    assert found == [], (
        f"{path.relative_to(ROOT)} runs or holds SQL outside gateway/store/: {found}; "
        "add a store method named for what it means and call that"
    )


@pytest.mark.parametrize(
    "source",
    [
        "store.db.q('SELECT 1')",
        "self.store.db.value(sql, (1,))",
        "conn.execute(x)",
        "conn.executemany(x, rows)",
        "sqlite3.connect(path).execute(x)",
        "x = 'SELECT id FROM messages WHERE id = ?'",
        "x = 'select id from messages'",
        "x = f'SELECT * FROM profiles WHERE id IN ({marks})'",
        "x = ('UPDATE messages' ' SET status = ?')",
        "x = 'INSERT OR IGNORE INTO opt_events VALUES (?)'",
        "x = 'DELETE FROM sessions'",
        "x = 'PRAGMA journal_mode'",
    ],
)
def test_the_check_finds_sql(source: str) -> None:
    assert sql_outside_store(source), source


@pytest.mark.parametrize(
    "source",
    [
        "self.execute(line)",  # the simulator's AT interpreter
        "settings.value('x')",
        "def f():\n    '''Select the modem from the pool; delete it from the SIM.'''\n",
        "x = 'choose a short code to send from'",
        "x = 'Delete it from the SIM after it is stored'",
        "case = ('DELETE', ['modems'])",
    ],
)
def test_the_check_leaves_other_code_alone(source: str) -> None:
    assert sql_outside_store(source) == [], source
