"""A restart loses nothing of the engine state now that it is committed check by check: the
pipeline's first commit writes every check, later ones only what changed, and a new runtime on
the same state directory reads the very state the old one held, then goes on from it (an open
incident resolves, and is not opened again)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.config.load import load_settings
from daemon.config.settings import Settings
from daemon.models import CheckResult, Status
from daemon.runtime import open_runtime

T0 = datetime(2026, 3, 2, tzinfo=UTC)
CHECKS = ("api", "db", "web", "cache")


def results(minute: int, failing: set[str]) -> list[CheckResult]:
    status: dict[bool, Status] = {True: "failing", False: "ok"}
    return [
        CheckResult(
            check=name,
            status=status[name in failing],
            evidence=f"{name} at {minute}",
            started_at=T0 + timedelta(minutes=minute),
            latency_ms=2.0,
        )
        for name in CHECKS
    ]


def four_checks(tmp_path: Path, *, baselines: bool) -> Settings:
    lines = [f'[daemon]\nstate_dir = "state"\n[baselines]\nenabled = {str(baselines).lower()}\n']
    for name in CHECKS:
        lines.append(f'[[checks]]\nname = "{name}"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 9\n')
    (tmp_path / "c.toml").write_text("\n".join(lines))
    return load_settings(tmp_path / "c.toml")


async def test_the_engine_state_survives_a_restart_and_goes_on(tmp_path: Path) -> None:
    settings = four_checks(tmp_path, baselines=False)
    clock = {"now": T0}

    async with open_runtime(settings, now=lambda: clock["now"]) as rt:
        for minute in range(4):
            clock["now"] = T0 + timedelta(minutes=minute, seconds=30)
            events = await rt.pipeline.record(results(minute, {"db"} if minute >= 2 else set()))
        assert [e.kind for e in events] == ["opened"]
        held = await rt.pipeline.state()

    async with open_runtime(settings, now=lambda: clock["now"]) as rt:
        assert await rt.pipeline.state() == held
        clock["now"] = T0 + timedelta(minutes=4, seconds=30)
        events = await rt.pipeline.record(results(4, set()))
        assert [(e.kind, e.check) for e in events] == [("resolved", "db")]
        after = await rt.pipeline.state()
        assert after.checks["api"].consecutive_successes == 5

    async with open_runtime(settings, now=lambda: clock["now"]) as rt:
        assert await rt.pipeline.state() == after


async def test_baseline_windows_are_saved_in_batches_only_when_changed_and_restored(
    tmp_path: Path,
) -> None:
    """`Pipeline.save_baselines` writes the checks whose windows took samples, a batch a
    transaction, and nothing when none did; a new runtime restores those windows (no history
    read) and, once it saves, drops a snapshot that covers nothing inside the window any more."""
    settings = four_checks(tmp_path, baselines=True)
    clock = {"now": T0}

    async with open_runtime(settings, now=lambda: clock["now"]) as rt:
        for minute in range(40):
            clock["now"] = T0 + timedelta(minutes=minute, seconds=30)
            await rt.pipeline.record(results(minute, {"db"}))  # db fails: nothing to feed
        assert await rt.pipeline.save_baselines(batch=2) == 3  # api, web, cache: 2 batches
        assert await rt.pipeline.save_baselines() == 0
        await rt.pipeline.record([r for r in results(40, set()) if r.check == "web"])
        assert await rt.pipeline.save_baselines() == 1
        assert rt.pipeline.baselines is not None
        held = {k: w.values() for k, w in rt.pipeline.baselines._windows.items()}
        rt.store.snapshots.write([("gone", T0 - timedelta(days=8), b"old")], T0)
        assert set(rt.store.snapshots.read(["api", "db", "web", "cache", "gone"])) == {
            "api",
            "web",
            "cache",
            "gone",
        }

    async with open_runtime(settings, now=lambda: clock["now"]) as rt:
        baselines = rt.pipeline.baselines
        assert baselines is not None
        baselines._load = lambda check, limit: []  # type: ignore[method-assign]
        clock["now"] = T0 + timedelta(minutes=41, seconds=30)
        baselines.prepare(results(41, set()), clock["now"])
        restored = {k: w.values() for k, w in baselines._windows.items()}
        assert restored == held and len(held[("web", None, "latency_ms")]) == 41
        assert await rt.pipeline.save_baselines() == 0  # restored, nothing new: no write
        assert "gone" in rt.store.snapshots.read(["gone"])
        await rt.pipeline.record(results(41, set()))
        assert await rt.pipeline.save_baselines() == 4  # db passes now too
        assert "gone" not in rt.store.snapshots.read(["gone"])  # aged out: dropped
