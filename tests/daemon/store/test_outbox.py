"""Outbox claims: a row is leased to one owner at a time; leases expire, are renewed before a
send, end with the row's outcome, and a dead owner on this host loses its rows at once."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.store import Store
from daemon.store.outbox import OutboxItem, new_owner, owner_gone
from tests.daemon.store.conftest import OpenStore

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest.fixture
def store(tmp_path: Path, open_store: OpenStore) -> Store:
    return open_store(tmp_path)


def queue(store: Store, count: int) -> list[int]:
    items = [OutboxItem("hook", f"m{n}", "body", "info") for n in range(count)]
    return store.outbox.enqueue(items, now=T0)


def test_a_claimed_row_is_not_handed_to_another_owner(store: Store) -> None:
    ids = queue(store, 3)
    mine = store.outbox.claim_due("me:1:a", T0, LEASE, limit=2)
    theirs = store.outbox.claim_due("them:2:b", T0, LEASE)
    assert [r.id for r in mine] == ids[:2]
    assert [r.id for r in theirs] == ids[2:]
    assert mine[0].claimed_by == "me:1:a" and mine[0].claimed_until == T0 + LEASE
    assert store.outbox.claim_due("third:3:c", T0, LEASE) == []


def test_an_expired_lease_lets_another_owner_take_the_row(store: Store) -> None:
    (row_id,) = queue(store, 1)
    store.outbox.claim_due("me:1:a", T0, LEASE)
    assert store.outbox.claim_due("them:2:b", T0 + LEASE - timedelta(seconds=1), LEASE) == []
    [taken] = store.outbox.claim_due("them:2:b", T0 + LEASE, LEASE)
    assert taken.id == row_id
    # the first owner's renewal now fails: it must not send the row
    assert not store.outbox.renew(row_id, "me:1:a", T0 + 2 * LEASE)
    assert store.outbox.renew(row_id, "them:2:b", T0 + 2 * LEASE)


def test_an_outcome_ends_the_claim_and_only_the_owner_records_it(store: Store) -> None:
    first, second = queue(store, 2)
    store.outbox.claim_due("me:1:a", T0, LEASE)
    store.outbox.mark_delivered(first, T0, "them:2:b")  # not theirs: ignored
    store.outbox.mark_delivered(first, T0, "me:1:a")
    store.outbox.mark_retry(second, T0, "refused", T0 + timedelta(minutes=1), "me:1:a")
    assert store.outbox.counts() == {"pending": 1, "delivered": 1, "failed": 0}
    [retry] = store.outbox.claim_due("them:2:b", T0 + timedelta(minutes=1), LEASE)
    assert retry.id == second and retry.attempts == 1 and retry.last_error == "refused"


def test_released_and_deferred_rows_are_free_again(store: Store) -> None:
    first, second = queue(store, 2)
    store.outbox.claim_due("me:1:a", T0, LEASE)
    store.outbox.release([first], "me:1:a")
    store.outbox.defer([second], T0 + timedelta(minutes=5), "me:1:a")
    assert [r.id for r in store.outbox.claim_due("them:2:b", T0, LEASE)] == [first]
    store.outbox.mark_delivered(first, T0, "them:2:b")
    later = T0 + timedelta(minutes=5)
    assert [r.id for r in store.outbox.claim_due("them:2:b", later, LEASE)] == [second]


def test_a_dead_owner_on_this_host_loses_its_claims_at_once(store: Store) -> None:
    (row_id,) = queue(store, 1)
    dead = f"{socket.gethostname()}:999999999:gone"  # a pid no process can have
    store.outbox.claim_due(dead, T0, LEASE)
    [taken] = store.outbox.claim_due(new_owner(), T0, LEASE)
    assert taken.id == row_id


def test_owner_liveness_is_only_judged_on_this_host() -> None:
    assert not owner_gone(new_owner())  # this very process
    assert owner_gone(f"{socket.gethostname()}:999999999:x")
    assert not owner_gone("another-host:999999999:x")  # cannot tell: wait for the lease
    assert not owner_gone("garbage")
    assert not owner_gone(None)
