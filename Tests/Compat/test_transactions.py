"""`Reference.transaction`: compare-and-set retries built on ETags."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from firebase_admin import db

from compat_helpers import assert_json_identical

WORKERS = 20
BARRIER_TIMEOUT_SECONDS = 30


def increment(value):
    """Transaction update: add one to a counter that may not exist yet."""
    return (value or 0) + 1


def test_concurrent_increments_are_not_lost(root):
    """20 threads each commit one increment; the counter ends at exactly 20.

    Each thread waits on a barrier so the transactions really overlap. With N writers a
    transaction can lose at most N - 1 races (each loss means another writer committed),
    so 20 writers stay within the SDK's 25 attempts and every transaction must commit.
    Each committed transaction returns the value it wrote, so a lost update would also
    show up as two transactions claiming the same count.
    """
    counter = root.child("counter")
    barrier = threading.Barrier(WORKERS)

    def worker(_):
        barrier.wait(timeout=BARRIER_TIMEOUT_SECONDS)
        return counter.transaction(increment)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        committed = list(pool.map(worker, range(WORKERS)))

    assert sorted(committed) == list(range(1, WORKERS + 1))
    assert_json_identical(counter.get(), WORKERS)


def test_transaction_on_existing_data_sees_the_current_value(root):
    """The update function gets the stored value and its result is written."""
    ref = root.child("account")
    ref.set({"balance": 100, "owner": "ada"})
    seen = []

    def withdraw(current):
        seen.append(current)
        return {**current, "balance": current["balance"] - 30}

    result = ref.transaction(withdraw)

    assert seen == [{"balance": 100, "owner": "ada"}]
    assert_json_identical(result, {"balance": 70, "owner": "ada"})
    assert_json_identical(ref.get(), {"balance": 70, "owner": "ada"})


def test_transaction_retries_after_a_concurrent_write(root):
    """A write between the read and the conditional set makes the SDK retry with fresh data."""
    ref = root.child("value")
    ref.set(1)
    seen = []

    def update(current):
        seen.append(current)
        if len(seen) == 1:
            ref.set(10)  # another client wins the race
        return current + 1

    assert ref.transaction(update) == 11
    assert seen == [1, 10]
    assert_json_identical(ref.get(), 11)


def test_transaction_that_raises_leaves_data_unchanged(root):
    """An exception from the update function aborts the transaction without writing."""
    ref = root.child("value")
    ref.set("before")

    def refuse(_):
        raise RuntimeError("no thanks")

    with pytest.raises(RuntimeError, match="no thanks"):
        ref.transaction(refuse)
    assert ref.get() == "before"


def test_transaction_gives_up_when_always_conflicting(root):
    """If every attempt loses a race, the SDK aborts after its retries."""
    ref = root.child("value")
    ref.set(0)
    attempts = []

    def always_conflicting(current):
        attempts.append(current)
        ref.set(1000 + len(attempts))  # change the value under the transaction every time
        return -1

    with pytest.raises(db.TransactionAbortedError):
        ref.transaction(always_conflicting)
    assert len(attempts) == 25
    assert ref.get() == 1000 + len(attempts)
