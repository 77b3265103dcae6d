"""`watchkeeper run`: the long-running service and its `--once` variant.

APScheduler drives one job per check; signals reload (SIGHUP) or drain and stop (SIGTERM);
systemd hears READY/STATUS/WATCHDOG/RELOADING/STOPPING. A failing job never stops the others.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import structlog

from daemon import USER_AGENT, notify, secrets
from daemon.config import Settings, load_settings
from daemon.errors import ConfigError
from daemon.health import HealthReport, serve_health
from daemon.logging import Redactor
from daemon.models import CheckResult, IncidentEvent
from daemon.notify import DeliveryReport, Notifier
from daemon.pipeline import Pipeline
from daemon.render import Message
from daemon.sdnotify import SdNotifier
from daemon.store import Store
from jobs.base import CheckContext, CheckSpec

log = structlog.get_logger(__name__)

HEARTBEAT_S = 5.0
REMINDER_TICK_S = 60.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def secret_resolver() -> Callable[[str], str]:
    """`secret:NAME` → value, and register the value so logs mask it wherever it appears."""

    def resolve(ref: str) -> str:
        value = secrets.resolve(ref)
        if value is not ref:
            Redactor.add_known(value)
        return value

    return resolve


@dataclass
class Runtime:
    """Everything a cycle needs, built once per process and closed in reverse order."""

    store: Store
    ctx: CheckContext
    notifier: Notifier
    pipeline: Pipeline
    wake: asyncio.Event


@asynccontextmanager
async def open_runtime(
    settings: Settings, now: Callable[[], datetime] = utcnow
) -> AsyncIterator[Runtime]:
    from daemon.ai import AI
    from daemon.baselines import Baselines
    from daemon.investigate import Investigator
    from daemon.ledger import Ledger

    store = await asyncio.to_thread(Store.open, settings.daemon.state_dir)
    resolve = secret_resolver()
    wake = asyncio.Event()
    async with httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT}, timeout=30.0, follow_redirects=False
    ) as client:
        ctx = CheckContext(http=client, now=now, resolve_secret=resolve)
        notifier = Notifier(store, settings.notify, settings.delivery, resolve, now)

        def queue_budget_notice(message: Message) -> None:
            store.enqueue(notify.route_message(message, settings.notify, "budget"))
            wake.set()

        ai = AI(settings, Ledger(store), client, now=now, on_budget_notice=queue_budget_notice)
        await asyncio.to_thread(ai.register_keys)
        investigator = Investigator(settings, store, ai, ctx, now=now, on_queued=wake.set)
        baselines = (
            Baselines(settings.baselines.policy(), store.recent_results)
            if settings.baselines.enabled
            else None
        )
        pipeline = Pipeline(
            settings,
            store,
            ctx,
            now=now,
            on_queued=wake.set,
            ai=ai,
            investigator=investigator,
            baselines=baselines,
        )
        try:
            yield Runtime(store, ctx, notifier, pipeline, wake)
        finally:
            await asyncio.to_thread(store.close)


@dataclass
class OnceReport:
    results: list[CheckResult]
    events: list[IncidentEvent]
    delivery: DeliveryReport


async def run_once(settings: Settings) -> OnceReport:
    """Every enabled check once, the whole pipeline, then deliver what is due."""
    async with open_runtime(settings) as rt:
        server = await _serve_health_once(settings, rt.pipeline)
        try:
            results, events = await rt.pipeline.cycle(settings.enabled_checks)
        finally:
            if server is not None:
                server.close()
        await rt.pipeline.wait_background(settings.escalation.timeout.total_seconds() + 10)
        await asyncio.to_thread(rt.store.prune, utcnow() - settings.daemon.retention)
        delivery = await rt.notifier.deliver_due()
    return OnceReport(results, events, delivery)


async def send_digest(settings: Settings, pipeline: Pipeline, now: datetime) -> Message:
    """Build the last 24 h digest and queue it for every target that wants `report`."""
    message = await build_digest(settings, pipeline, now)
    items = notify.route_message(message, settings.notify, "report")
    await asyncio.to_thread(pipeline.store.enqueue, items)
    return message


async def build_digest(settings: Settings, pipeline: Pipeline, now: datetime) -> Message:
    """The last 24 h digest, in `[digest] timezone`, with the messages' savings comparison."""
    from zoneinfo import ZoneInfo

    from daemon.ai import cloud_references, price_overrides
    from daemon.digest import digest

    ai = pipeline.ai
    assert ai is not None
    references = cloud_references(settings)  # the same comparison the messages' cost blocks use
    reference, api = (str(references[0][0]), references[0][1]) if references else (None, None)
    message, _ = await digest(
        pipeline.store,
        ai.ledger,
        ai,
        now.astimezone(ZoneInfo(settings.digest.timezone)),
        reference_model=reference,
        reference_api=api,
        overrides=price_overrides(settings),
    )
    return message


async def _serve_health_once(settings: Settings, pipeline: Pipeline) -> asyncio.Server | None:
    """`--once` serves the health endpoint too, so checks of it see the real thing."""
    listen = settings.daemon.health_listen
    if not listen:
        return None
    host, _, port = listen.rpartition(":")

    def probe() -> HealthReport:
        return HealthReport(
            healthy=True,
            detail={
                "mode": "once",
                "checks": len(settings.enabled_checks),
                "cycles": pipeline.cycles,
            },
        )

    try:
        return await serve_health(host.strip("[]"), int(port), probe)
    except OSError as exc:
        log.warning("health endpoint not served", listen=listen, reason=exc.strerror)
        return None


def _jitter(spec: CheckSpec, settings: Settings) -> float:
    interval = (spec.interval or timedelta(seconds=60)).total_seconds()
    return min(settings.daemon.jitter.total_seconds(), interval / 10)


@dataclass
class Service:
    """The daemon. `await Service(path, settings).serve()` returns the exit code."""

    config_path: Path
    settings: Settings
    sd: SdNotifier = field(default_factory=SdNotifier)
    now: Callable[[], datetime] = utcnow

    def __post_init__(self) -> None:
        self.stop_event = asyncio.Event()
        self.wake_notifier = asyncio.Event()
        self.inflight: set[asyncio.Task[Any]] = set()
        self.last_beat = time.monotonic()
        self.scheduler: Any = None
        self.pipeline: Pipeline | None = None
        self.notifier: Notifier | None = None
        self.reloads = 0

    async def serve(self) -> int:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        async with open_runtime(self.settings, self.now) as rt:
            self.notifier = rt.notifier
            self.wake_notifier = rt.wake
            self.pipeline = rt.pipeline
            await self.pipeline.state()
            await self.pipeline.resume_investigations()
            self.scheduler = AsyncIOScheduler(
                timezone=UTC,
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
            )
            self._schedule_all()
            self.scheduler.start()
            helpers = await self._start_helpers()
            self._install_signals()
            self.sd.ready()
            self._send_status()
            log.info("watchkeeper started", checks=len(self.settings.enabled_checks))
            await self.stop_event.wait()
            await self._shutdown(helpers)
        return 0

    async def _start_helpers(self) -> list[asyncio.Task[Any] | asyncio.Server]:
        assert self.notifier is not None
        tasks: list[asyncio.Task[Any] | asyncio.Server] = [
            asyncio.create_task(self.notifier.run(self.wake_notifier, self.stop_event)),
            asyncio.create_task(self._watchdog()),
        ]
        listen = self.settings.daemon.health_listen
        if listen:
            host, _, port = listen.rpartition(":")
            try:
                tasks.append(await serve_health(host.strip("[]"), int(port), self.health))
            except OSError as exc:
                log.error("health endpoint not served", listen=listen, reason=exc.strerror)
        return tasks

    # -- scheduling -------------------------------------------------------------------------

    def _schedule_all(self) -> None:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        for job in list(self.scheduler.get_jobs()):
            job.remove()
        start = self.now() + timedelta(seconds=1)
        for spec in self.settings.enabled_checks:
            trigger: Any
            if spec.cron:
                trigger = CronTrigger.from_crontab(spec.cron, timezone=UTC)
                trigger.jitter = int(self.settings.daemon.jitter.total_seconds())
                next_run: datetime | None = None
            else:
                interval = spec.interval or timedelta(seconds=60)
                trigger = IntervalTrigger(
                    seconds=interval.total_seconds(),
                    jitter=_jitter(spec, self.settings) or None,
                    timezone=UTC,
                )
                next_run = start
            self.scheduler.add_job(
                self._check_job,
                trigger,
                args=[spec.name],
                id=f"check:{spec.name}",
                name=spec.name,
                replace_existing=True,
                **({"next_run_time": next_run} if next_run else {}),
            )
        self.scheduler.add_job(self._beat, "interval", seconds=HEARTBEAT_S, id="heartbeat")
        self.scheduler.add_job(self._remind, "interval", seconds=REMINDER_TICK_S, id="reminders")
        self.scheduler.add_job(self._prune, "interval", hours=1, id="prune")
        if self.settings.digest.enabled:
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(self.settings.digest.timezone)
            self.scheduler.add_job(
                self._digest,
                CronTrigger.from_crontab(self.settings.digest.cron, timezone=zone),
                id="digest",
                replace_existing=True,
            )
        for sweep in self.settings.sweeps:
            if sweep.enabled:
                self.scheduler.add_job(
                    self._sweep_job,
                    CronTrigger.from_crontab(sweep.cron, timezone=UTC),
                    args=[sweep.name],
                    id=f"sweep:{sweep.name}",
                    name=sweep.name,
                    replace_existing=True,
                )

    async def _check_job(self, name: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            spec = self.settings.check(name)
            assert self.pipeline is not None
            results = await self.pipeline.run_checks([spec])
            self.pipeline.submit(results)
        except KeyError:
            return  # removed by a reload while queued
        except Exception:
            log.exception("check job failed", check=name)
        finally:
            if task is not None:
                self.inflight.discard(task)

    async def _remind(self) -> None:
        try:
            assert self.pipeline is not None
            await self.pipeline.remind()
        except Exception:
            log.exception("reminder pass failed")

    async def _prune(self) -> None:
        assert self.pipeline is not None
        cutoff = self.now() - self.settings.daemon.retention
        try:
            removed = await asyncio.to_thread(self.pipeline.store.prune, cutoff)
        except Exception:
            log.exception("pruning old results failed")
            return
        if removed:
            log.info("pruned old check results", removed=removed)

    async def _digest(self) -> None:
        """The daily digest: deterministic figures, plus a `digest` model summary if usable."""
        try:
            assert self.pipeline is not None
            await send_digest(self.settings, self.pipeline, self.now())
            self.wake_notifier.set()
        except Exception:
            log.exception("daily digest failed")

    async def _sweep_job(self, name: str) -> None:
        """A nightly sweep; drained like a check on SIGTERM (a cancelled one stores nothing)."""
        from daemon.sweeps import SweepError, run_sweep

        sweep = next((s for s in self.settings.sweeps if s.name == name), None)
        if sweep is None or self.pipeline is None:
            return  # removed by a reload while queued
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            pipeline = self.pipeline
            await run_sweep(
                self.settings, sweep, pipeline.store, pipeline.ai, pipeline.ctx, self.now()
            )
            self.wake_notifier.set()
        except SweepError as exc:
            log.error("sweep could not run", sweep=name, reason=str(exc))
        except Exception:
            log.exception("sweep failed", sweep=name)
        finally:
            if task is not None:
                self.inflight.discard(task)

    async def _beat(self) -> None:
        self.last_beat = time.monotonic()
        self._send_status()

    # -- health, watchdog, status -------------------------------------------------------------

    def healthy(self) -> bool:
        """The scheduler runs and its heartbeat job fired recently."""
        from apscheduler.schedulers.base import STATE_RUNNING

        running = self.scheduler is not None and self.scheduler.state == STATE_RUNNING
        return running and time.monotonic() - self.last_beat < 3 * HEARTBEAT_S

    def health(self) -> HealthReport:
        pipeline = self.pipeline
        last = pipeline.last_cycle_at if pipeline else None
        return HealthReport(
            healthy=self.healthy(),
            detail={
                "checks": len(self.settings.enabled_checks),
                "cycles": pipeline.cycles if pipeline else 0,
                "last_cycle": last.isoformat() if last else None,
                "open_incidents": self._open_incidents(),
            },
        )

    def _open_incidents(self) -> int:
        return self.pipeline.open_incidents if self.pipeline else 0

    async def _watchdog(self) -> None:
        interval = self.sd.watchdog_interval()
        if interval is None:
            return
        while not self.stop_event.is_set():
            if self.healthy():
                self.sd.watchdog()
            else:
                log.warning("scheduler unhealthy: withholding the systemd watchdog ping")
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=interval)

    def _send_status(self) -> None:
        last = self.pipeline.last_cycle_at if self.pipeline else None
        when = last.strftime("%H:%M:%S UTC") if last else "none yet"
        self.sd.status(
            f"{len(self.settings.enabled_checks)} checks · "
            f"{self._open_incidents()} open incidents · last result {when}"
        )

    # -- signals: reload and stop ------------------------------------------------------------

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))

    def request_stop(self, why: str = "request") -> None:
        if not self.stop_event.is_set():
            log.info("stopping", signal=why)
            self.sd.stopping()
            self.stop_event.set()

    async def reload(self) -> bool:
        """Re-read the config; an invalid one is rejected and the running one kept."""
        self.sd.reloading()
        try:
            new = await asyncio.to_thread(load_settings, self.config_path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload rejected: " + problem.render(exc.source))
            log.error("keeping the running configuration")
            self.sd.ready()
            return False
        if new.daemon.state_dir != self.settings.daemon.state_dir:
            log.warning("daemon.state_dir changes need a restart; keeping the current one")
            new.daemon.state_dir = self.settings.daemon.state_dir
        self.settings = new
        assert self.pipeline is not None and self.notifier is not None
        self.pipeline.reconfigure(new)
        self.notifier.update_targets(new.notify)
        self._schedule_all()
        self.reloads += 1
        log.info("configuration reloaded", checks=len(new.enabled_checks))
        self.sd.ready()
        self._send_status()
        return True

    async def _shutdown(self, helpers: list[asyncio.Task[Any] | asyncio.Server]) -> None:
        self.scheduler.pause()
        drain = self.settings.daemon.drain_timeout.total_seconds()
        pending = {t for t in self.inflight if not t.done()}
        if pending:
            log.info("draining running checks", running=len(pending), limit_s=drain)
            _, still = await asyncio.wait(pending, timeout=drain)
            for task in still:
                task.cancel()
            if still:
                log.warning("cancelled checks that outlived the drain", cancelled=len(still))
                await asyncio.wait(still, timeout=2)
        self.scheduler.shutdown(wait=False)
        if self.pipeline is not None:  # record what ran; let investigations finish, briefly
            await self.pipeline.wait_background(min(drain, 10.0))
        for helper in helpers:
            if isinstance(helper, asyncio.Server):
                helper.close()
            else:
                helper.cancel()
        await asyncio.gather(
            *(h for h in helpers if isinstance(h, asyncio.Task)), return_exceptions=True
        )
        log.info("watchkeeper stopped")
