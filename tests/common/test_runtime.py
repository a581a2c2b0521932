"""The batch collector: paused during a batch, survivors frozen, dead frozen cycles still freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from services.common.runtime import BatchCollector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def collector_state() -> Iterator[None]:
    """Leave the process's collector as it was (enabled, nothing of the test frozen)."""
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


@pytest.mark.usefixtures("collector_state")
def test_the_collector_is_paused_inside_and_restored_after() -> None:
    gc.enable()
    collector = BatchCollector()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()  # a disabled collector stays disabled


@pytest.mark.usefixtures("collector_state")
def test_what_survives_a_batch_is_frozen() -> None:
    collector = BatchCollector(full_interval_s=3600)
    before = gc.get_freeze_count()
    state = [Node() for _ in range(100)]
    with collector.paused():
        collector.keep()
    assert gc.get_freeze_count() >= before + len(state)


@pytest.mark.usefixtures("collector_state")
def test_a_cycle_that_dies_once_frozen_is_freed_by_the_periodic_full_collection() -> None:
    collector = BatchCollector(full_interval_s=3600)
    with collector.paused():
        ref = _cycle()
        collector.keep()  # garbage already, but not collected while paused: frozen with the rest
    gc.collect()
    assert ref() is not None  # frozen: an ordinary collection skips it
    collector.full_interval_s = 0
    with collector.paused():
        collector.keep()
    assert ref() is None
