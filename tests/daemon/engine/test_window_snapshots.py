"""A baseline window survives `dump`/`load` exactly (codes, sorted codes, tick runs, base tick,
the plain-doubles fallback): the same bytes again, the same samples, median, MAD and ageing,
and it goes on taking samples as the original does. A check's windows pack together, and bytes
that are damaged, truncated, of another format or of another window configuration are refused
with `SnapshotError`, never restored wrong and never another exception."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.engine import window as window_module
from daemon.engine.snapshots import pack, restorable, unpack
from daemon.engine.window import FORMAT, SnapshotError, Window, dump, load

CAPACITY = 300
TICK = 60.0


def fed(count: int, seed: int = 1, *, negative_at: int | None = None) -> Window:
    """A window fed `count` lognormal samples a minute apart (one negative at `negative_at`)."""
    rng = random.Random(seed)
    window = Window(CAPACITY, TICK)
    for i in range(count):
        value = -1.5 if i == negative_at else rng.lognormvariate(3, 0.6)
        window.add(value, 1.7e9 + 61.3 * i)
    return window


def same(a: Window, b: Window) -> None:
    assert dump(a) == dump(b)
    assert a.values() == b.values() and len(a) == len(b) and a.exact == b.exact
    if len(a):
        median = a.median()
        assert b.median() == median and b.mad(median) == a.mad(median)
        assert a.oldest_tick() == b.oldest_tick()


def aged() -> Window:
    window = fed(250, seed=3)
    window.prune(1.7e9 + 61.3 * 120)  # about the oldest half aged out
    return window


CASES = {
    "empty": lambda: Window(CAPACITY, TICK),
    "filling": lambda: fed(40),
    "full": lambda: fed(CAPACITY),
    "wrapped": lambda: fed(2 * CAPACITY + 77, seed=2),
    "aged": aged,
    "fallback": lambda: fed(CAPACITY + 50, seed=4, negative_at=10),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_window_round_trips_exactly_and_goes_on_as_the_original(case: str) -> None:
    original = CASES[case]()
    restored = load(dump(original), CAPACITY, TICK)
    same(original, restored)
    rng = random.Random(8)
    for i in range(CAPACITY // 2):  # both take the same samples (and one without a code)
        value = 1e12 if i == 5 and case == "filling" else rng.lognormvariate(3.2, 0.5)
        at = 1.7e9 + 61.3 * (2 * CAPACITY + 100 + i)
        original.add(value, at)
        restored.add(value, at)
    original.prune(1.7e9 + 61.3 * (2 * CAPACITY + 130))
    restored.prune(1.7e9 + 61.3 * (2 * CAPACITY + 130))
    same(original, restored)


def test_the_fallback_mode_and_a_wrapped_ring_are_what_they_claim() -> None:
    assert CASES["fallback"]().exact and not CASES["wrapped"]().exact
    assert CASES["wrapped"]()._head != 0  # the ring is unrolled by dump, oldest first
    assert len(CASES["aged"]()) < 250


def test_another_window_configuration_or_format_is_refused() -> None:
    data = dump(fed(CAPACITY))
    with pytest.raises(SnapshotError, match="configuration"):
        load(data, CAPACITY, TICK * 2)  # the window's length changed: other ticks
    with pytest.raises(SnapshotError, match="configuration"):
        load(data, CAPACITY + 1, TICK)
    with pytest.raises(SnapshotError, match="format"):
        load(bytes([FORMAT + 1]) + data[1:], CAPACITY, TICK)


def test_damaged_or_truncated_bytes_are_refused() -> None:
    data = dump(fed(CAPACITY))
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40  # one bit of one code
    with pytest.raises(SnapshotError, match="damaged"):
        load(bytes(flipped), CAPACITY, TICK)
    for cut in (0, 10, len(data) - 1):
        with pytest.raises(SnapshotError):
            load(data[:cut], CAPACITY, TICK)


def test_a_checks_windows_pack_together_with_absent_and_unicode_subjects() -> None:
    windows = {(None, "latency_ms"): fed(CAPACITY), ("q\u00e9-1", "depth"): CASES["fallback"]()}
    restored = unpack(pack(windows), CAPACITY, TICK)
    assert list(restored) == list(windows)
    for key, window in windows.items():
        same(window, restored[key])
    assert unpack(pack({}), CAPACITY, TICK) == {}


def test_restorable_sorts_usable_snapshots_from_refused_ones_with_the_reason() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 3, 2, tzinfo=UTC)
    good = pack({(None, "latency_ms"): fed(50)})
    usable, refused = restorable(
        {"a": (at, good), "b": (at, good[:-3]), "c": (at, b"\x09junk")}, CAPACITY, TICK
    )
    assert list(usable) == ["a"] and usable["a"][0] == at
    assert set(refused) == {"b", "c"} and "format 9" in refused["c"]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_damage_to_a_snapshot_is_a_snapshot_error_or_an_exact_window(
    data: st.DataObject,
) -> None:
    blob = pack({(None, "latency_ms"): fed(30), ("s", "x"): fed(5, seed=7)})
    damaged = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4))):
        damaged[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    try:
        restored = unpack(bytes(damaged[:cut] if cut < len(blob) else damaged), CAPACITY, TICK)
    except SnapshotError:
        return
    # Accepted: the damage missed every checksummed byte (e.g. a byte set to its own value)
    # or hit only names; each window is then one of the originals.
    originals = {dump(w) for w in (fed(30), fed(5, seed=7))}
    assert {dump(w) for w in restored.values()} <= originals


def test_the_format_version_is_the_first_byte() -> None:
    assert dump(Window(5, 1.0))[0] == FORMAT == window_module.FORMAT


def test_format_1_is_tied_to_the_code_scale_and_ticks_it_was_written_with() -> None:
    """A snapshot stores codes and tick numbers, not values and times: a new code scale or
    tick count must come with a new FORMAT, or old snapshots would decode to other values."""
    from daemon.engine.codes import HIGH, LEVELS, LOW
    from daemon.engine.window import TICKS

    assert (FORMAT, LOW, HIGH, LEVELS, TICKS) == (1, 2.0**-10, 2.0**30, 65535, 1024), (
        "codes or ticks changed: bump daemon.engine.window.FORMAT and update this test"
    )
