"""No test waits a fixed time and then asserts: it waits for the condition (a polling loop with a
deadline) or for a marker sent after the last event.

A sleep outside any loop is a bet on the machine's speed: too short on a loaded machine and the
test fails, too long and a "nothing else arrives" check passes whatever arrives later. Sleeps
inside a ``while``/``for`` loop are polling steps or pacing and are allowed. The allow-list below
names the few straight-line sleeps that assert nothing; each says why. Polling for a condition
that never holds (``lambda o: False``) is a fixed sleep too.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent

ALLOWED: dict[tuple[str, str], str] = {
    # (file relative to tests/, enclosing function): why the fixed sleep asserts nothing
    (
        "common/test_aio.py",
        "test_a_wake_up_racing_with_the_cancellation_does_not_keep_the_loop_alive",
    ): "lets the task reach its wait before the race is staged; the outcome is awaited",
    ("common/test_db.py", "increment"): "widens a read-modify-write race on purpose",
}


def _straight_line_sleeps(path: Path) -> list[tuple[str, int]]:
    """``(enclosing function, line)`` of each sleep call not inside a loop."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, function: str, in_loop: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                name = getattr(child, "name", "<lambda>")
                visit(child, name, False)
            elif isinstance(child, ast.While | ast.For | ast.AsyncFor):
                visit(child, function, True)
            else:
                if _is_sleep(child) and not in_loop:
                    found.append((function, child.lineno))  # type: ignore[attr-defined]
                visit(child, function, in_loop)

    visit(ast.parse(path.read_text(), str(path)), "<module>", False)
    return found


def _is_sleep(node: ast.AST) -> bool:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    if node.func.attr != "sleep":
        return False
    zero = node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == 0
    return not zero  # sleep(0) only yields to the event loop


def test_no_fixed_sleep_outside_a_polling_loop() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        rel = path.relative_to(TESTS).as_posix()
        for function, line in _straight_line_sleeps(path):
            if (rel, function) not in ALLOWED:
                offenders.append(f"{rel}:{line} in {function}()")
    assert not offenders, "fixed sleeps (wait for a condition instead):\n" + "\n".join(offenders)


def test_the_allow_list_is_not_stale() -> None:
    present = {
        (path.relative_to(TESTS).as_posix(), function)
        for path in TESTS.rglob("*.py")
        for function, _ in _straight_line_sleeps(path)
    }
    assert set(ALLOWED) <= present, set(ALLOWED) - present


def test_no_polling_for_a_condition_that_never_holds() -> None:
    """``wait_until(lambda ...: False, timeout_s=3)`` is a fixed sleep in disguise."""
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Lambda):
                continue
            if isinstance(node.body, ast.Constant) and node.body.value is False:
                offenders.append(f"{path.relative_to(TESTS).as_posix()}:{node.lineno}")
    assert not offenders, "polls for a condition that never holds:\n" + "\n".join(offenders)
