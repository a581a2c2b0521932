"""Fault points: the named instants between two writes where a test injects a crash.

A promise such as "the offsets and the batch's effects commit together" is only proven by failing
at the instant between the two writes; a random kill lands there by chance. Code marks that
instant with ``await fault_point("area.between_x_and_y")`` (one line); a test installs, with
:func:`injected`, what runs there: raising aborts the open transaction exactly as a crash drops
the connection, so nothing of it may survive. Without an injection a point is one dict lookup.
Tests only: nothing in the services or the CLI installs a fault.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

Fault = Callable[[], Awaitable[None]]

_injected: dict[str, Fault] = {}


async def fault_point(name: str) -> None:
    """Run the fault injected at ``name``, if any (it may raise)."""
    fault = _injected.get(name)
    if fault is not None:
        await fault()


@contextmanager
def injected(name: str, fault: Fault) -> Iterator[None]:
    """Install ``fault`` at the point ``name`` for the duration of the block."""
    if name in _injected:
        raise RuntimeError(f"a fault is already injected at {name}")
    _injected[name] = fault
    try:
        yield
    finally:
        del _injected[name]
