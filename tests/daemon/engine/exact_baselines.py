"""The baseline computation as it was before compact windows (deques of `(datetime, float)`,
`statistics.median` over the whole window on every judgement), kept as the oracle the
equivalence test and `bench.scale` compare `daemon.engine.baselines.Baselines` against.
Same feed, seed, prune and judge order as the old class; `detect` is the exact rule."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime

from daemon.engine.baselines import MEDIAN_PREFIX, Anomaly, BaselinePolicy, detect, metrics
from daemon.engine.baselines import _degrade as degrade
from daemon.models import CheckResult

Key = tuple[str, str | None, str]


class ExactBaselines:
    def __init__(
        self, policy: BaselinePolicy, load: Callable[[str, int], list[CheckResult]]
    ) -> None:
        self.policy = policy
        self._load = load
        self._loaded: set[str] = set()
        self._windows: dict[Key, deque[tuple[datetime, float]]] = {}

    def apply(
        self, results: list[CheckResult], now: datetime
    ) -> tuple[list[CheckResult], list[Anomaly]]:
        cutoff = now - self.policy.window
        for key, window in list(self._windows.items()):
            while window and window[0][0] < cutoff:
                window.popleft()
            if not window:
                del self._windows[key]
        for check in dict.fromkeys(r.check for r in results):
            if check not in self._loaded:
                earliest = min(r.started_at for r in results if r.check == check)
                self._seed(check, cutoff, earliest)
                self._loaded.add(check)
        out: list[CheckResult] = []
        found: list[Anomaly] = []
        for result in results:
            anomalies = self._judge(result) if result.status == "ok" else []
            found += anomalies
            out.append(degrade(result, anomalies) if anomalies else result)
        for result in sorted(results, key=lambda r: r.started_at):
            if result.status == "ok" and result.started_at >= cutoff:
                self._feed(result)
        return out, found

    def history(self, check: str, subject: str | None, metric: str) -> list[float]:
        return [v for _, v in self._windows.get((check, subject, metric), ())]

    def _judge(self, result: CheckResult) -> list[Anomaly]:
        found = []
        for metric, _ in metrics(result):
            history = self.history(result.check, result.subject, metric)
            anomaly = detect(result, history, metric, self.policy)
            if anomaly is not None:
                found.append(anomaly)
        return found

    def _seed(self, check: str, cutoff: datetime, before: datetime) -> None:
        for row in reversed(self._load(check, self.policy.max_samples)):
            ok = row.status == "ok" or (
                row.status == "degraded" and any(k.startswith(MEDIAN_PREFIX) for k in row.values)
            )
            if ok and cutoff <= row.started_at < before:
                self._feed(row)

    def _feed(self, result: CheckResult) -> None:
        for metric, value in metrics(result):
            key = (result.check, result.subject, metric)
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = deque(maxlen=self.policy.max_samples)
            window.append((result.started_at, value))
