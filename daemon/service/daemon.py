"""`watchkeeper run`: the long-running service.

APScheduler drives one job per check; signals reload (SIGHUP) or drain and stop (SIGTERM);
systemd hears READY/STATUS/WATCHDOG/RELOADING/STOPPING. A failing job never stops the others.
Everything the jobs use comes from the `Runtime`; this module only schedules and supervises.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from structlog.contextvars import bound_contextvars

from daemon.config.load import load_settings
from daemon.config.settings import Settings
from daemon.engine.pipeline import TIMEOUT_GRACE_S
from daemon.errors import ConfigError, ConfigProblem
from daemon.notify.digest import queue_digest
from daemon.runtime import Runtime, open_runtime, secret_resolver
from daemon.service.health import HealthReport, Listener, listen_problem, serve_health
from daemon.service.heartbeat import Heartbeat
from daemon.service.pings import PingDesk, configured_tokens
from daemon.service.sdnotify import SdNotifier
from daemon.service.spread import Spread
from daemon.store.database import store_io
from daemon.util.net import parse_listen
from daemon.util.time import utcnow
from jobs.base import CheckSpec

if TYPE_CHECKING:
    from daemon.engine.investigator import Outcome
    from daemon.web.console import Console

log = structlog.get_logger(__name__)

HEARTBEAT_S = 5.0
REMINDER_TICK_S = 60.0
STALL_FLOOR_S = 60.0


def stall_limit(settings: Settings) -> float | None:
    """Seconds without a committed cycle after which the daemon is unhealthy: the configured
    `stall_after`, else three times the shortest expected gap between results (interval or
    cron period, plus the check's timeout), at least STALL_FLOOR_S. None without checks."""
    if settings.daemon.stall_after is not None:
        return settings.daemon.stall_after.total_seconds()
    gaps = [
        _period(spec) + spec.timeout.total_seconds() + TIMEOUT_GRACE_S
        for spec in settings.enabled_checks
    ]
    return max(3 * min(gaps), STALL_FLOOR_S) if gaps else None


def _period(spec: CheckSpec) -> float:
    """The longest gap between two runs of `spec` (the next few of a cron schedule)."""
    if not spec.cron:
        return (spec.interval or timedelta(seconds=60)).total_seconds()
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(spec.cron, timezone=UTC)
    fires: list[datetime] = []
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    while len(fires) < 9:
        fire = trigger.get_next_fire_time(fires[-1] if fires else None, moment)
        if fire is None:
            break
        fires.append(fire)
        moment = fire + timedelta(microseconds=1)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(fires)]
    return max(gaps, default=86400.0)


def _jitter(spec: CheckSpec, settings: Settings) -> float:
    interval = (spec.interval or timedelta(seconds=60)).total_seconds()
    return min(settings.daemon.jitter.total_seconds(), interval / 10)


@dataclass
class Service:
    """The daemon. `await Service(path, settings).serve()` returns the exit code."""

    config_path: Path
    initial: Settings
    sd: SdNotifier = field(default_factory=SdNotifier)
    now: Callable[[], datetime] = utcnow
    spread: Spread = field(default_factory=lambda: Spread(), init=False, repr=False)

    def __post_init__(self) -> None:
        self.stop_event = asyncio.Event()
        self.inflight: set[asyncio.Task[Any]] = set()
        self.last_beat = time.monotonic()
        self.scheduler: Any = None
        self.rt: Runtime | None = None
        self.desk: PingDesk | None = None
        """Where heartbeat pings from the listener go, once the runtime is open."""
        self.reloads = 0
        self.leader: Any = None
        """The leader election (`daemon.service.leader.Leader`) with `[store] url`."""
        self.shard: Any = None
        """This node's membership (`daemon.service.cluster.ShardNode`) in sharded mode."""
        self.exit_code = 0

    @property
    def settings(self) -> Settings:
        """The configuration in force: the runtime's once it is open (reloads change it)."""
        return self.rt.settings if self.rt is not None else self.initial

    @property
    def runtime(self) -> Runtime:
        if self.rt is None:
            raise RuntimeError("the service is not running")
        return self.rt

    async def serve(self) -> int:
        listeners = await self._listen()  # first: a taken address stops the start (exit 2)
        try:
            return await self._serve()
        finally:
            for listener in listeners:
                listener.close()
            for listener in listeners:
                await listener.wait_closed()
            if self.leader is not None:
                await asyncio.to_thread(self.leader.close)
            if self.shard is not None:
                await asyncio.to_thread(self.shard.close)

    async def _serve(self) -> int:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        async with open_runtime(self.initial, self.now) as rt:
            self.rt = rt
            self.desk = PingDesk(rt.store, self.now)  # a standby records pings too
            self.desk.apply(configured_tokens(rt.settings, secret_resolver()))
            sharded = rt.settings.cluster.mode == "sharded"
            if not await (self._join(rt) if sharded else self._lead(rt)):
                return self.exit_code
            if not sharded:  # (sharded: loaded once this node holds the lease)
                await rt.pipeline.state()
                await rt.pipeline.resume_investigations()
            self.scheduler = AsyncIOScheduler(
                timezone=UTC,
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
            )
            self._schedule_all()
            self.scheduler.start()
            helpers = self._start_helpers()
            self._install_signals()
            self.sd.ready()
            self._send_status()
            log.info("watchkeeper started", checks=len(self.settings.enabled_checks))
            await self.stop_event.wait()
            await self._shutdown(helpers)
            if self.shard is not None:
                await self.shard.drain(rt.pipeline, rt.store)
                await asyncio.to_thread(self.shard.leave)
            if self.leader is not None:
                await asyncio.to_thread(self.leader.release)
        return self.exit_code

    async def _join(self, rt: Runtime) -> bool:
        """Sharded mode: join the members (daemon.service.cluster), fence this store's writes
        by the membership, and name the node and location in HTTP checks' User-Agent. The
        leader lease is sought in the background (`_lead_shards`)."""
        from daemon.config.cluster import node_name
        from daemon.service.cluster import ShardNode, user_agent

        store, location = rt.settings.store, rt.settings.cluster.location
        assert store.url is not None  # (config validation: sharded needs [store] url)
        password = await asyncio.to_thread(store.resolved_password)
        node = node_name(store.node)
        self.shard = ShardNode(
            store.url, password, store.lease, node, location, lambda: self.settings
        )
        self._install_signals()
        self.sd.ready()
        self.sd.status(f"joining the cluster as {node}")
        if not await self.shard.join(self.stop_event):
            return False
        rt.store.db.fence = self.shard.fence(rt.store)
        rt.ctx.http.headers["User-Agent"] = user_agent(node, location)
        return True

    async def _lead_shards(self) -> None:
        """Sharded mode: while running its share, seek the leader lease; once held, fence the
        store by it and do the single-owner work: evaluate every node's results, notify,
        remind, triage, investigate, sweep (the scheduled jobs check `_leads`)."""
        from daemon.service.evaluator import Evaluator
        from daemon.service.leader import election

        rt, shard, store = self.runtime, self.shard, self.settings.store
        self.leader = election(store, shard.password)
        if not await self.leader.wait(self.stop_event):
            return
        rt.store.db.fence = self.leader.fence()
        await rt.pipeline.state()
        await rt.pipeline.resume_investigations()
        evaluator = Evaluator(
            rt.store,
            rt.pipeline,
            lambda: self.settings,
            lambda: shard.members,
            store.lease,
            self.now,
        )
        await asyncio.gather(
            rt.notifier.run(rt.wake, self.stop_event),
            self.leader.keep(self.stop_event, self._deposed),
            evaluator.run(self.stop_event),
        )

    @property
    def _leads(self) -> bool:
        """Whether this process does the single-owner work: always, unless sharded and not
        (or not yet) the lease holder."""
        return self.shard is None or (self.leader is not None and self.leader.active)

    async def _run_now(self, names: list[str]) -> None:
        """Checks this node just gained (their node left or died): start the interval ones
        now rather than a whole interval late."""
        specs = {spec.name: spec for spec in self.settings.enabled_checks}
        due = [n for n in names if n in specs and not specs[n].cron]
        if due:
            span = min(self.settings.daemon.jitter.total_seconds(), 1.0)
            await self.spread.start(due, span, self._check_job, self.stop_event)

    async def _spread_mine(
        self, names: list[str], span_s: float, job: Any, stop: asyncio.Event
    ) -> None:
        """An interval group's run, of this node's share of it (all of it unless sharded)."""
        if self.shard is not None:
            names = [name for name in names if self.shard.runs(name)]
        await self.spread.start(names, span_s, job, stop)

    async def _lead(self, rt: Runtime) -> bool:
        """With `[store] url`: wait as a standby until this process holds the leader lease,
        then fence its store's writes with the lease's epoch (daemon.service.leader). False
        when stopped while waiting."""
        store = rt.settings.store
        if store.url is None:
            return True
        from daemon.service.leader import election

        password = await asyncio.to_thread(store.resolved_password)
        self.leader = election(store, password)
        self._install_signals()
        self.sd.ready()
        self.sd.status(f"standby: waiting for the leader lease as {self.leader.node}")
        if not await self.leader.wait(self.stop_event):
            return False
        rt.store.db.fence = self.leader.fence()
        return True

    def _role(self) -> tuple[str, str] | None:
        """This node and its role, with a leader election or in sharded mode (for /healthz and
        /metrics): "active" holds the lease, "member" runs its share of a sharded cluster's
        checks without it, "standby" waits to take over."""
        if self.leader is not None and self.leader.active:
            return self.leader.node, "active"
        if self.shard is not None:
            return self.shard.node, "member"
        if self.leader is not None:
            return self.leader.node, "standby"
        return None

    def _deposed(self, why: str) -> None:
        from daemon.service.leader import DEPOSED_EXIT

        log.error("deposed: stopping, to start again as a standby", reason=why)
        self.exit_code = DEPOSED_EXIT
        if self.leader is not None:
            self.leader.lease = None
        self.request_stop("deposed")

    def _start_helpers(self) -> list[asyncio.Task[Any]]:
        rt = self.runtime
        helpers: list[asyncio.Task[Any]] = [
            asyncio.create_task(self._watchdog()),
            asyncio.create_task(self._heartbeat().run(self.stop_event)),
        ]
        if self.shard is not None:  # the notifier and the lease come with leadership
            helpers.append(asyncio.create_task(self.shard.keep(self.stop_event, self._run_now)))
            helpers.append(asyncio.create_task(self._lead_shards()))
            return helpers
        helpers.append(asyncio.create_task(rt.notifier.run(rt.wake, self.stop_event)))
        if self.leader is not None:
            helpers.append(asyncio.create_task(self.leader.keep(self.stop_event, self._deposed)))
        return helpers

    async def _ping(self, token: str, suffix: str, body: bytes, client: str) -> bool:
        """A heartbeat ping from the listener; unknown (404) until the runtime is open."""
        if self.desk is None:
            return False
        return await self.desk.receive(token, suffix, body, client)

    async def _listen(self) -> list[Listener]:
        """The listeners, bound before anything else starts; ConfigError (exit 2) when an
        address cannot be had. Until the scheduler runs /healthz answers 503. `[web]` on the
        same address as `health_listen` shares its listener; on another it gets its own
        (/healthz and pings are served on both)."""
        settings = self.settings
        web = settings.web.listen if settings.web.enabled else None
        wanted = [(web, "web.listen", True)] if web else []
        health = settings.daemon.health_listen
        if health and health != web:
            wanted.append((health, "daemon.health_listen", False))
        listeners: list[Listener] = []
        try:
            for listen, where, console in wanted:
                host, port = parse_listen(listen)
                try:
                    listeners.append(
                        await serve_health(
                            host,
                            port,
                            self.health,
                            pings=self._ping,
                            console=self._console() if console else None,
                        )
                    )
                except OSError as exc:
                    raise ConfigError(
                        str(self.config_path), [ConfigProblem(where, listen_problem(listen, exc))]
                    ) from None
        except BaseException:
            for listener in listeners:
                listener.close()
                await listener.wait_closed()
            raise
        return listeners

    def _console(self) -> Console:
        """The web console over this daemon's store and settings (reloads apply)."""
        from daemon.web.console import Console

        return Console(
            settings=lambda: self.settings,
            open_store=lambda: self.rt.store if self.rt is not None else None,
            config_path=self.config_path,
            last_cycle=lambda: self.rt.pipeline.last_cycle_at if self.rt is not None else None,
            resolve=secret_resolver(),
            cycle_seconds=lambda: self.rt.pipeline.last_cycle_seconds if self.rt else None,
            deliveries=lambda: self.rt.notifier.totals if self.rt else None,
            cluster=self._role,
            investigate=self._investigate,
        )

    async def _investigate(self, incident_id: int) -> Outcome | None:
        """An on-demand RCA for the MCP tool: the running investigator, its budget and
        ledger; stored on the incident, nobody notified."""
        rt = self.runtime
        found = await store_io(rt.store.incidents.get, incident_id)
        if found is None or rt.investigator is None:
            return None
        return await rt.investigator.investigate(
            found[0], "requested by an agent (MCP)", notify_targets=False
        )

    def _heartbeat(self) -> Heartbeat:
        """The outbound heartbeat ([daemon] heartbeat_url): it follows committed cycles and
        health, and reads the configuration in force at each look (a reload applies)."""
        return Heartbeat(
            settings=lambda: self.settings.daemon,
            cycles=lambda: self.runtime.pipeline.cycles,
            problems=self.problems,
            resolve=self.runtime.ctx.resolve_secret,
        )

    # -- scheduling -------------------------------------------------------------------------

    def _schedule_all(self) -> None:
        """Cron checks get a job each; checks that share an interval share one job, which
        starts them spread evenly over the jitter span (bench.scale: APScheduler costs ~2.4x
        the CPU a run with one job per check, and 2 s to add 10,000 jobs at each reload)."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        settings = self.settings
        for job in list(self.scheduler.get_jobs()):
            job.remove()
        self.spread.cancel()
        start = self.now() + timedelta(seconds=1)
        groups: dict[float, list[CheckSpec]] = {}
        for spec in settings.enabled_checks:
            if not spec.cron:
                interval = (spec.interval or timedelta(seconds=60)).total_seconds()
                groups.setdefault(interval, []).append(spec)
                continue
            trigger = CronTrigger.from_crontab(spec.cron, timezone=UTC)
            trigger.jitter = int(settings.daemon.jitter.total_seconds())
            self.scheduler.add_job(
                self._check_job,
                trigger,
                args=[spec.name],
                id=f"check:{spec.name}",
                name=spec.name,
                replace_existing=True,
            )
        for interval, specs in groups.items():
            names = sorted(spec.name for spec in specs)
            self.scheduler.add_job(
                self._spread_mine,
                IntervalTrigger(seconds=interval, timezone=UTC),
                args=[names, _jitter(specs[0], settings), self._check_job, self.stop_event],
                id=f"checks:{interval:g}s",
                name=f"{len(names)} checks every {interval:g} s",
                replace_existing=True,
                next_run_time=start,
            )
        self.scheduler.add_job(self._beat, "interval", seconds=HEARTBEAT_S, id="heartbeat")
        self.scheduler.add_job(self._remind, "interval", seconds=REMINDER_TICK_S, id="reminders")
        self.scheduler.add_job(self._prune, "interval", hours=1, id="prune")
        self.scheduler.add_job(self._save_baselines, "interval", hours=1, id="baseline-snapshots")
        if settings.digest.enabled:
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(settings.digest.timezone)
            self.scheduler.add_job(
                self._digest,
                CronTrigger.from_crontab(settings.digest.cron, timezone=zone),
                id="digest",
                replace_existing=True,
            )
        for sweep in settings.sweeps:
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
        if self.shard is not None and not self.shard.runs(name):
            return  # another node's since the run was queued (or a cron check of another)
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        self.spread.running.add(name)
        try:
            with bound_contextvars(check=name):
                spec = self.settings.check(name)
                pipeline = self.runtime.pipeline
                results = await pipeline.run_checks([spec])
                if self.shard is not None:
                    self.shard.submit(results, pipeline, self.runtime.store)
                else:
                    pipeline.submit(results)
        except KeyError:
            return  # removed by a reload while queued
        except Exception:
            log.exception("check job failed", check=name)
        finally:
            self.spread.running.discard(name)
            if task is not None:
                self.inflight.discard(task)

    async def _remind(self) -> None:
        if not self._leads:
            return
        try:
            await self.runtime.pipeline.remind()
        except Exception:
            log.exception("reminder pass failed")

    async def _prune(self) -> None:
        """Rollups, retention and free pages (`Store.maintenance`), a short transaction a
        step on the store's thread, so cycles commit between the steps."""
        if not self._leads:
            return
        daemon = self.settings.daemon
        steps = self.runtime.store.maintenance(
            self.now(), daemon.retention, daemon.minute_rollups, daemon.hour_rollups
        )
        totals: dict[str, int] = {}
        try:
            while (step := await store_io(next, steps, None)) is not None:
                totals[step[0]] = totals.get(step[0], 0) + step[1]
        except Exception:
            log.exception("pruning old results failed")
            return
        if any(totals.values()):
            log.info("rolled up and pruned old check results", **_snake(totals))

    async def _save_baselines(self) -> None:
        """Snapshots of the baseline windows that changed (hourly and at a clean stop), so a
        restart restores them and reads only the results stored after them."""
        started = time.monotonic()
        try:
            saved = await self.runtime.pipeline.save_baselines()
        except Exception:
            log.exception("saving baseline snapshots failed")
            return
        if saved:
            seconds = round(time.monotonic() - started, 3)
            log.info("saved baseline snapshots", checks=saved, seconds=seconds)

    async def _digest(self) -> None:
        """The daily digest: deterministic figures, plus a `digest` model summary if usable."""
        if not self._leads:
            return
        try:
            rt = self.runtime
            await queue_digest(rt.settings, rt.store, rt.ai, self.now())
            rt.wake.set()
        except Exception:
            log.exception("daily digest failed")

    async def _sweep_job(self, name: str) -> None:
        """A nightly sweep; drained like a check on SIGTERM (a cancelled one stores nothing)."""
        from daemon.sweeps.runner import SweepError, run_sweep

        rt = self.runtime
        sweep = next((s for s in rt.settings.sweeps if s.name == name), None)
        if sweep is None or not self._leads:
            return  # removed by a reload while queued
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            with bound_contextvars(sweep=name):
                await run_sweep(rt.settings, sweep, rt.store, rt.ai, rt.ctx, self.now())
            rt.wake.set()
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

    def problems(self) -> list[str]:
        """Why the daemon is not doing its job, empty when it is: the scheduler must run, its
        heartbeat be recent, and cycles keep being committed (a wedged resolver, a full disk
        or a stuck store stop those while the scheduler itself looks fine)."""
        from apscheduler.schedulers.base import STATE_RUNNING

        if self.leader is not None and not self.leader.active and self.scheduler is None:
            # a standby does its job by waiting; it must reach the database to take over
            return [] if self.leader.problem is None else [f"standby: {self.leader.problem}"]
        if self.scheduler is None or self.scheduler.state != STATE_RUNNING:
            return ["the scheduler is not running"]
        problems = []
        beat = time.monotonic() - self.last_beat
        if beat >= 3 * HEARTBEAT_S:
            problems.append(f"the scheduler's heartbeat is {beat:.0f} s old")
        limit = stall_limit(self.settings)
        pipeline = self.rt.pipeline if self.rt else None
        if limit is not None and pipeline is not None:
            idle = time.monotonic() - pipeline.last_commit
            if idle > limit:
                why = f"; last error: {pipeline.last_error}" if pipeline.last_error else ""
                problems.append(f"no cycle committed for {idle:.0f} s (limit {limit:g} s){why}")
        return problems

    def healthy(self) -> bool:
        return not self.problems()

    def health(self) -> HealthReport:
        pipeline = self.rt.pipeline if self.rt else None
        last = pipeline.last_cycle_at if pipeline else None
        problems = self.problems()
        detail: dict[str, Any] = {
            "checks": len(self.settings.enabled_checks),
            "cycles": pipeline.cycles if pipeline else 0,
            "last_cycle": last.isoformat() if last else None,
            "open_incidents": self._open_incidents(),
        }
        role = self._role()
        if role is not None:
            detail["node"], detail["role"] = role
        if problems:
            detail["reason"] = "; ".join(problems)
        return HealthReport(healthy=not problems, detail=detail)

    def _open_incidents(self) -> int:
        return self.rt.pipeline.open_incidents if self.rt else 0

    async def _watchdog(self) -> None:
        interval = self.sd.watchdog_interval()
        if interval is None:
            return
        while not self.stop_event.is_set():
            problems = self.problems()
            if not problems:
                self.sd.watchdog()
            else:
                log.warning("unhealthy: withholding the systemd watchdog ping", why=problems)
            with suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=interval)

    def _send_status(self) -> None:
        last = self.rt.pipeline.last_cycle_at if self.rt else None
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
        old = self.settings.web
        if (new.web.enabled, new.web.listen) != (old.enabled, old.listen):
            log.warning(
                "web.enabled and web.listen changes need a restart; still serving as before",
                listen=old.listen if old.enabled else None,
            )
        if new.daemon.health_listen != self.settings.daemon.health_listen:
            log.warning(
                "daemon.health_listen changes need a restart; still serving the current one",
                listen=self.settings.daemon.health_listen,
            )
        self.runtime.apply(new)
        if self.desk is not None:
            self.desk.apply(configured_tokens(new, secret_resolver()))
        if self.shard is not None:  # the new checks are shared out before they are due
            await self.shard.replan()
        if self.scheduler is not None:  # (a standby schedules nothing yet)
            self._schedule_all()
        self.reloads += 1
        log.info("configuration reloaded", checks=len(new.enabled_checks))
        self.sd.ready()
        self._send_status()
        return True

    async def _shutdown(self, helpers: list[asyncio.Task[Any]]) -> None:
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
        if self.rt is not None:  # record what ran; let investigations finish, briefly
            await self.rt.pipeline.wait_background(min(drain, 10.0))
            await self._save_baselines()
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        log.info("watchkeeper stopped")


def _snake(totals: dict[str, int]) -> dict[str, int]:
    return {what.replace(" ", "_"): count for what, count in totals.items()}
