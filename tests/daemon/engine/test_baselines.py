"""Soft anomalies from per-check baselines: `detect` as a pure function, `Baselines` driven
cycle by cycle with an injected clock and an in-memory history loader."""

# The expected sentences spell the multiplication sign literally, as people will read it.
# ruff: noqa: RUF001

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.engine.baselines import LATENCY, Anomaly, BaselinePolicy, Baselines, detect
from daemon.engine.codes import EPSILON
from daemon.models import CheckResult, Status

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
POLICY = BaselinePolicy()
AROUND_133 = [130.0, 131.0, 132.0, 133.0, 134.0, 135.0, 136.0] * 6
"""42 samples, median 133, MAD 2."""
AROUND_551 = [545.0, 548.0, 551.0, 554.0, 557.0] * 8


def near(x: object) -> object:
    """A figure as a window holds it: 16-bit codes keep values within EPSILON relative."""
    return pytest.approx(x, rel=EPSILON)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def result(
    latency: float | None = None,
    *,
    check: str = "api",
    status: Status = "ok",
    subject: str | None = None,
    started_at: datetime = T0,
    evidence: str = "GET /health answered 200",
    **values: float | int | str | bool | None,
) -> CheckResult:
    return CheckResult(
        check=check,
        status=status,
        evidence=evidence,
        started_at=started_at,
        latency_ms=latency,
        subject=subject,
        values=values,
    )


def no_history(check: str, limit: int) -> list[CheckResult]:
    return []


def feed(
    baselines: Baselines,
    latencies: Sequence[float],
    *,
    start: float = 0,
    subject: str | None = None,
) -> float:
    """One ok result per minute from `start`; returns the minute after the last one."""
    for i, latency in enumerate(latencies):
        when = at(start + i)
        baselines.apply([result(latency, subject=subject, started_at=when)], when)
    return start + len(latencies)


# --- detect: the rule ---------------------------------------------------------------------


def test_latency_outlier_has_the_exact_sentence() -> None:
    anomaly = detect(result(812), AROUND_133, LATENCY, POLICY)
    assert anomaly is not None
    assert anomaly.sentence == "latency 812 ms is 6.1× the 7-day median 133 ms"
    assert (anomaly.check, anomaly.subject, anomaly.metric) == ("api", None, LATENCY)
    assert anomaly.value == 812
    assert anomaly.median == 133
    assert anomaly.ratio == pytest.approx(812 / 133)
    assert anomaly.z == pytest.approx((812 - 133) / (1.4826 * 2))


def test_ratio_is_rounded_to_one_decimal() -> None:
    history = [98.0, 99.0, 100.0, 101.0, 102.0] * 8
    anomaly = detect(result(396), history, LATENCY, POLICY)
    assert anomaly is not None
    assert anomaly.sentence == "latency 396 ms is 4.0× the 7-day median 100 ms"


def test_sentence_names_the_configured_window() -> None:
    policy = BaselinePolicy(window=timedelta(hours=12))
    anomaly = detect(result(812), AROUND_133, LATENCY, policy)
    assert anomaly is not None
    assert "the 12-hour median 133 ms" in anomaly.sentence


def test_not_flagged_below_min_samples() -> None:
    history = [100.0] * 29
    assert detect(result(1000), history, LATENCY, POLICY) is None
    assert detect(result(1000), [*history, 100.0], LATENCY, POLICY) is not None


def test_small_absolute_latency_jump_is_ignored() -> None:
    # 2 ms -> 7 ms is 3.5x and a huge z-score, but only 5 ms: noise on real infrastructure.
    assert detect(result(7), [2.0] * 40, LATENCY, POLICY) is None
    assert detect(result(53), [2.0] * 40, LATENCY, POLICY) is not None


def test_small_ratio_is_ignored_even_with_a_huge_z() -> None:
    assert detect(result(290), [100.0] * 40, LATENCY, POLICY) is None


def test_small_z_is_ignored_even_with_a_big_ratio() -> None:
    noisy = [10.0, 100.0, 200.0, 400.0] * 10  # median 150, MAD 95
    assert detect(result(600), noisy, LATENCY, POLICY) is None


def test_faster_than_usual_is_not_an_anomaly() -> None:
    assert detect(result(5), [500.0] * 40, LATENCY, POLICY) is None


def test_constant_series_with_zero_mad_still_judges() -> None:
    anomaly = detect(result(400), [100.0] * 40, LATENCY, POLICY)
    assert anomaly is not None
    assert math.isfinite(anomaly.z)
    assert detect(result(101), [100.0] * 40, LATENCY, POLICY) is None


def test_value_above_its_median() -> None:
    anomaly = detect(result(queue_depth=5400), AROUND_551, "queue_depth", POLICY)
    assert anomaly is not None
    assert anomaly.sentence == "value queue_depth 5400 is 9.8× the 7-day median 551"


def test_value_below_its_median() -> None:
    anomaly = detect(result(queue_depth=50), AROUND_551, "queue_depth", POLICY)
    assert anomaly is not None
    assert anomaly.sentence == "value queue_depth 50 is 11.0× below the 7-day median 551"
    assert anomaly.ratio == pytest.approx(551 / 50)


def test_value_dropping_to_zero() -> None:
    anomaly = detect(result(queue_depth=0), AROUND_551, "queue_depth", POLICY)
    assert anomaly is not None
    assert anomaly.sentence == "value queue_depth 0 is down from the 7-day median 551"
    assert anomaly.ratio == math.inf


def test_values_use_a_relative_rule_only() -> None:
    anomaly = detect(result(errors=7), [2.0] * 40, "errors", POLICY)
    assert anomaly is not None
    assert anomaly.sentence == "value errors 7 is 3.5× the 7-day median 2"


def test_value_with_median_zero_is_skipped() -> None:
    assert detect(result(errors=50), [0.0] * 40, "errors", POLICY) is None


def test_bools_strings_and_missing_figures_are_not_metrics() -> None:
    history = [1.0] * 40
    assert detect(result(healthy=True), history, "healthy", POLICY) is None
    assert detect(result(version="9"), history, "version", POLICY) is None
    assert detect(result(), history, LATENCY, POLICY) is None
    assert detect(result(float("nan")), history, LATENCY, POLICY) is None


def test_policy_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="min_samples"):
        BaselinePolicy(min_samples=3000)
    with pytest.raises(ValueError, match="window"):
        BaselinePolicy(window=timedelta(0))


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(
    history=st.lists(finite, max_size=60),
    x=finite,
    metric=st.sampled_from([LATENCY, "queue_depth"]),
    min_samples=st.integers(1, 40),
    z_threshold=st.floats(0.5, 10),
    min_ratio=st.floats(1, 10),
)
def test_anomaly_only_when_both_ratio_and_z_clear_their_thresholds(
    history: list[float],
    x: float,
    metric: str,
    min_samples: int,
    z_threshold: float,
    min_ratio: float,
) -> None:
    policy = BaselinePolicy(min_samples=min_samples, z_threshold=z_threshold, min_ratio=min_ratio)
    subject = result(x) if metric == LATENCY else result(queue_depth=x)
    anomaly = detect(subject, history, metric, policy)
    if anomaly is None:
        return
    assert len(history) >= min_samples
    assert anomaly.ratio >= min_ratio
    assert anomaly.z >= z_threshold
    assert anomaly.median == statistics.median(history) > 0
    if metric == LATENCY:
        assert x - anomaly.median >= policy.min_delta_ms


# --- Baselines: windows over cycles -------------------------------------------------------


def test_outlier_becomes_degraded_with_evidence_and_median() -> None:
    baselines = Baselines(POLICY, no_history)
    minute = feed(baselines, AROUND_133)
    outlier = result(812, started_at=at(minute), evidence="GET /health answered 200 in 812 ms")
    out, anomalies = baselines.apply([outlier], at(minute))
    assert [a.sentence for a in anomalies] == ["latency 812 ms is 6.1× the 7-day median 133 ms"]
    assert out[0].status == "degraded"
    assert out[0].evidence == (
        "GET /health answered 200 in 812 ms — latency 812 ms is 6.1× the 7-day median 133 ms"
    )
    assert out[0].values == {"baseline_median_latency_ms": near(133)}
    assert outlier.status == "ok"  # the input is not mutated


def test_several_outlying_metrics_share_one_evidence_line() -> None:
    baselines = Baselines(POLICY, no_history)
    for i, (latency, depth) in enumerate(zip(AROUND_133, itertools.cycle(AROUND_551))):
        baselines.apply([result(latency, started_at=at(i), queue_depth=depth)], at(i))
    out, anomalies = baselines.apply([result(812, started_at=at(60), queue_depth=5400)], at(60))
    assert [a.metric for a in anomalies] == [LATENCY, "queue_depth"]
    assert out[0].evidence.endswith(
        "— latency 812 ms is 6.1× the 7-day median 133 ms; "
        "value queue_depth 5400 is 9.8× the 7-day median 551"
    )
    assert out[0].values["queue_depth"] == 5400
    assert out[0].values["baseline_median_queue_depth"] == near(551)


def test_ok_results_within_their_baseline_pass_through_unchanged() -> None:
    baselines = Baselines(POLICY, no_history)
    minute = feed(baselines, AROUND_133)
    usual = result(140, started_at=at(minute))
    out, anomalies = baselines.apply([usual], at(minute))
    assert anomalies == []
    assert out == [usual]


@pytest.mark.parametrize("status", ["degraded", "failing", "error"])
def test_non_ok_results_are_untouched_and_not_learned(status: Status) -> None:
    baselines = Baselines(POLICY, no_history)
    minute = feed(baselines, AROUND_133)
    judged = result(9000, status=status, started_at=at(minute))
    out, anomalies = baselines.apply([judged], at(minute))
    assert anomalies == []
    assert out[0] is judged
    assert max(baselines.history("api", None, LATENCY)) < 200


def test_samples_older_than_the_window_expire() -> None:
    baselines = Baselines(POLICY, no_history)
    feed(baselines, AROUND_133)
    six_days = at(6 * 24 * 60)
    _, anomalies = baselines.apply([result(812, started_at=six_days)], six_days)
    assert len(anomalies) == 1

    eight_days = at(8 * 24 * 60)
    assert baselines.history("api", None, LATENCY)[-1] == near(812)
    _, anomalies = baselines.apply([result(812, started_at=eight_days)], eight_days)
    assert anomalies == []
    # Only the six-day-old sample survived; the first 42 aged out.
    assert baselines.history("api", None, LATENCY) == near([812, 812])


def test_windows_keep_at_most_max_samples() -> None:
    policy = BaselinePolicy(max_samples=50, min_samples=10)
    baselines = Baselines(policy, no_history)
    feed(baselines, [float(i) for i in range(200)])
    assert baselines.history("api", None, LATENCY) == near([float(i) for i in range(150, 200)])


class Loader:
    """An in-memory `store.results.recent`: newest first, counting calls."""

    def __init__(self, rows: list[CheckResult]) -> None:
        self.rows = sorted(rows, key=lambda r: r.started_at, reverse=True)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, check: str, limit: int) -> list[CheckResult]:
        self.calls.append((check, limit))
        return [r for r in self.rows if r.check == check][:limit]


def test_history_is_loaded_once_per_check_on_first_sight() -> None:
    rows = [result(v, started_at=at(i)) for i, v in enumerate(AROUND_133)]
    rows += [result(50, check="db", started_at=at(i)) for i in range(40)]
    loader = Loader(rows)
    baselines = Baselines(POLICY, loader)
    now = at(100)

    _, anomalies = baselines.apply([result(812, started_at=now)], now)
    assert [a.sentence for a in anomalies] == ["latency 812 ms is 6.1× the 7-day median 133 ms"]
    assert loader.calls == [("api", 2000)]

    batch = [result(130, started_at=at(101)), result(500, check="db", started_at=at(101))]
    _, anomalies = baselines.apply(batch, at(101))
    assert [a.check for a in anomalies] == ["db"]
    assert loader.calls == [("api", 2000), ("db", 2000)]

    baselines.apply(batch, at(102))
    assert len(loader.calls) == 2


def test_loaded_history_keeps_only_ok_and_baseline_degraded_rows_before_the_cycle() -> None:
    rows = [result(100, started_at=at(i)) for i in range(30)]
    rows.append(result(9000, status="failing", started_at=at(30)))
    rows.append(result(300, status="degraded", started_at=at(31)))  # degraded by a rule
    shifted = result(400, status="degraded", started_at=at(32), baseline_median_latency_ms=100)
    rows.append(shifted)
    rows.append(result(777, started_at=at(40)))  # this cycle, already stored
    baselines = Baselines(POLICY, Loader(rows))
    baselines.apply([result(777, started_at=at(40))], at(40))
    assert baselines.history("api", None, LATENCY) == near([100] * 30 + [400, 777])


def test_a_permanent_shift_becomes_the_new_normal() -> None:
    # Flagged results still feed their raw figure, so a release that is simply slower is
    # reported for a while and then accepted, rather than flagged forever.
    baselines = Baselines(POLICY, no_history)
    minute = feed(baselines, AROUND_133)
    flagged = []
    for i in range(100):
        when = at(minute + i)
        _, anomalies = baselines.apply([result(800, started_at=when)], when)
        flagged.append(bool(anomalies))
    assert flagged[0]
    first_quiet = flagged.index(False)
    assert not any(flagged[first_quiet:])
    assert first_quiet <= len(AROUND_133)


def test_subjects_keep_separate_baselines() -> None:
    baselines = Baselines(POLICY, no_history)
    feed(baselines, AROUND_133, subject="pod-a")
    minute = feed(baselines, [1000.0 + i % 5 for i in range(40)], subject="pod-b")
    batch = [
        result(1000, subject="pod-a", started_at=at(minute)),
        result(1000, subject="pod-b", started_at=at(minute)),
    ]
    out, anomalies = baselines.apply(batch, at(minute))
    assert [(a.subject, a.median) for a in anomalies] == [("pod-a", near(133))]
    assert [r.status for r in out] == ["degraded", "ok"]


def test_only_numeric_values_get_windows() -> None:
    baselines = Baselines(POLICY, no_history)
    baselines.apply([result(10, healthy=True, version="1.2", depth=3, note=None)], T0)
    assert baselines.history("api", None, "depth") == near([3])
    assert baselines.history("api", None, "healthy") == []
    assert baselines.history("api", None, "version") == []


def test_anomaly_is_a_plain_frozen_record() -> None:
    anomaly = detect(result(812), AROUND_133, LATENCY, POLICY)
    assert isinstance(anomaly, Anomaly)
    with pytest.raises(AttributeError):
        anomaly.value = 1  # type: ignore[misc]


def test_latency_in_values_is_judged_once_and_codes_never() -> None:
    baselines = Baselines(POLICY, no_history)
    minute = 0
    for minute, latency in enumerate(AROUND_133):
        baselines.apply(
            [
                result(
                    latency,
                    started_at=at(minute),
                    latency_ms=latency,
                    status_code=200 if minute % 2 else 204,
                )
            ],
            at(minute),
        )
    out, anomalies = baselines.apply(
        [result(812, started_at=at(minute + 1), latency_ms=812, status_code=500)], at(minute + 1)
    )
    assert [a.metric for a in anomalies] == [LATENCY]
    assert out[0].evidence.count("latency 812 ms") == 1
    assert baselines.history("api", None, "status_code") == []


def test_sub_millisecond_jitter_in_other_durations_is_not_an_anomaly() -> None:
    baselines = Baselines(POLICY, no_history)
    for minute in range(40):
        baselines.apply([result(10, started_at=at(minute), connect_ms=0.4)], at(minute))
    _, anomalies = baselines.apply([result(10, started_at=at(41), connect_ms=1.3)], at(41))
    assert anomalies == []
