from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from planwise_monitoring.evaluation.drift import EXACT_MAX_N, _exact_p, detect_drift, mann_kendall
from planwise_monitoring.evaluation.regression import RegressionSeverity, detect_regression, severity_for

BASE = 60.0


def creeping(seed: int, n: int = 30, pct_per_run: float = 1.0, sigma: float = 0.05, base: float = BASE) -> list[float]:
    """``n`` runs getting ``pct_per_run`` % slower each (geometric), with lognormal noise."""
    rng = np.random.default_rng(seed)
    return (base * (1 + pct_per_run / 100) ** np.arange(n) * rng.lognormal(0.0, sigma, n)).tolist()


def geometric(total_pct: float, n: int = 11) -> list[float]:
    """A noise-free series whose change from first to last value is exactly ``total_pct``."""
    ratio = (1 + total_pct / 100) ** (1 / (n - 1))
    return [BASE * ratio**i for i in range(n)]


# --- creeping series: what detect_regression cannot see ---------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_one_percent_creep_is_drift_but_not_a_regression(seed):
    runs = creeping(seed)
    verdict = detect_drift(runs)
    assert verdict.is_drift
    assert verdict.slope_pct_per_run == pytest.approx(1.0, abs=0.3)
    assert verdict.severity is not None and verdict.severity is severity_for(verdict.total_change_pct)
    assert verdict.p_value is not None and verdict.p_value <= verdict.alpha == 0.01
    assert verdict.samples == 30
    assert verdict.reason.startswith(f"drift ({verdict.severity.value}): +")
    # the step detector's median baseline moves with the creep: no regression, not even suspected
    regression = detect_regression(runs[:-2], runs[-2:])
    assert not regression.is_regression and not regression.suspected


def test_the_slope_of_a_noise_free_creep_is_exact():
    verdict = detect_drift([BASE * 1.01**i for i in range(31)])
    assert verdict.slope_pct_per_run == pytest.approx(1.0)
    assert verdict.total_change_pct == pytest.approx((1.01**30 - 1) * 100)
    assert verdict.severity is RegressionSeverity.MAJOR  # +34.8 %


# --- what is not drift -------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("spikes_at", [(5, 17, 30), (0, 2, 4), (29, 34, 39)])
def test_a_stationary_series_with_spikes_is_not_drift(seed, spikes_at):
    runs = creeping(seed, n=40, pct_per_run=0.0, sigma=0.08)
    for at in spikes_at:
        runs[at] *= 3.0
    verdict = detect_drift(runs)
    assert not verdict.is_drift and verdict.severity is None
    assert verdict.reason.startswith("no drift")
    assert abs(verdict.total_change_pct) < 15.0  # the Theil-Sen slope ignores the spikes


@pytest.mark.parametrize("seed", range(5))
def test_a_decreasing_series_is_not_drift(seed):
    verdict = detect_drift(creeping(seed, pct_per_run=-1.0))
    assert not verdict.is_drift and verdict.severity is None
    assert verdict.slope_pct_per_run == pytest.approx(-1.0, abs=0.3)  # still reported
    assert verdict.p_value is not None and verdict.p_value > 0.99
    assert verdict.reason.startswith("no drift: not increasing")


def test_a_significant_but_small_trend_is_not_drift():
    verdict = detect_drift(geometric(10.0))  # perfectly monotone: p tiny, but only +10 %
    assert verdict.p_value is not None and verdict.p_value < 1e-6
    assert not verdict.is_drift and verdict.severity is None
    assert "not more than 15 %" in verdict.reason


def test_an_insignificant_trend_is_not_drift():
    runs = [100.0, 140.0, 90.0, 150.0, 95.0, 145.0, 100.0, 150.0, 90.0, 140.0]  # a zigzag, no trend
    verdict = detect_drift(runs)
    assert not verdict.is_drift and verdict.p_value is not None and verdict.p_value > 0.01
    assert "not significant" in verdict.reason or "not increasing" in verdict.reason


def test_a_flat_series_is_not_drift():
    verdict = detect_drift([BASE] * 20)  # all tied: S = 0
    assert not verdict.is_drift
    assert verdict.p_value == 1.0 and verdict.slope_pct_per_run == 0.0


def test_only_the_window_is_judged():
    old_creep = [BASE * 1.02**i for i in range(40)]
    runs = old_creep + creeping(5, n=60, pct_per_run=0.0, base=old_creep[-1])
    assert not detect_drift(runs).is_drift  # the last 60 runs are flat
    wide = detect_drift(runs, window=100)
    assert wide.is_drift and wide.samples == 100


# --- bad data, bad parameters ------------------------------------------------------------------

@pytest.mark.parametrize(
    "history, usable",
    [
        ([], 0),
        ([100.0] * 9, 9),
        ([100.0, 101.0, math.nan, 0.0, -3.0, None, math.inf, True] + [100.0] * 6, 8),
    ],
)
def test_insufficient_history_gives_no_verdict(history, usable):
    verdict = detect_drift(history)
    assert not verdict.is_drift and verdict.samples == usable
    assert verdict.slope_pct_per_run is None and verdict.total_change_pct is None and verdict.p_value is None
    assert verdict.severity is None
    assert verdict.reason == f"insufficient history: {usable} usable value(s), need 10"


def test_unusable_values_are_dropped_but_keep_their_place_in_time():
    clean = [BASE * 1.02**i for i in range(20)]
    dirty: list[float | None] = list(clean)
    for at, bad in ((3, math.nan), (7, 0.0), (11, -5.0), (15, None), (18, math.inf)):
        dirty[at] = bad
    verdict = detect_drift(dirty)  # type: ignore[arg-type]
    assert verdict.samples == 15
    assert verdict.slope_pct_per_run == pytest.approx(2.0)  # per run, not per usable value
    assert verdict.total_change_pct == pytest.approx((1.02**19 - 1) * 100)  # first to last usable run
    assert verdict.is_drift


def test_numpy_values_are_usable():
    verdict = detect_drift(np.array(geometric(40.0), dtype=np.float32))  # type: ignore[arg-type]
    assert verdict.samples == 11 and verdict.is_drift


@pytest.mark.parametrize(
    "params",
    [
        dict(alpha=0.0), dict(alpha=1.0), dict(alpha=-0.1), dict(alpha=math.nan),
        dict(min_samples=2), dict(min_samples=20, window=10), dict(min_change_pct=-1.0),
        dict(min_change_pct=math.nan),
    ],
)
def test_invalid_parameters_raise(params):
    with pytest.raises(ValueError):
        detect_drift(geometric(40.0), **params)


# --- memory across the years of one simulation -------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_memory_growing_8_percent_a_year_is_drift(seed):
    peaks = creeping(seed, n=6, pct_per_run=8.0, sigma=0.01, base=2000.0)
    verdict = detect_drift(peaks, min_samples=5, unit="year")
    assert verdict.is_drift and verdict.samples == 6
    assert verdict.slope_pct_per_run == pytest.approx(8.0, abs=1.5)
    assert verdict.severity is RegressionSeverity.MAJOR  # about +47 % over 5 years
    assert "%/year over 6 years" in verdict.reason
    assert verdict.method.startswith("one-sided Mann-Kendall test (exact p)")


@pytest.mark.parametrize("seed", range(5))
def test_flat_memory_is_not_drift(seed):
    peaks = creeping(seed, n=8, pct_per_run=0.0, sigma=0.02, base=2000.0)
    assert not detect_drift(peaks, min_samples=5).is_drift


def test_five_rising_years_just_reach_alpha():
    verdict = detect_drift(geometric(40.0, n=5), min_samples=5)
    assert verdict.p_value == pytest.approx(1 / 120)  # the one order of 5 values in 120 that rises throughout
    assert verdict.is_drift
    one_swap = geometric(40.0, n=5)
    one_swap[1], one_swap[2] = one_swap[2], one_swap[1]
    assert detect_drift(one_swap, min_samples=5).p_value == pytest.approx(5 / 120)  # S = 8: 1 + 4 orders
    assert not detect_drift(one_swap, min_samples=5).is_drift


# --- the p-value -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "values",
    [[1, 2, 3, 4, 5, 6], [1, 1, 2, 3, 4, 5], [1, 1, 2, 2, 3, 3], [2, 1, 1, 1, 3, 4, 4], [3, 2, 1, 4, 6, 5, 7]],
)
def test_the_exact_p_value_is_the_permutation_distribution(values):
    s, p = mann_kendall(np.array(values, dtype=float))
    orders = list(itertools.permutations(values))
    at_least = sum(sum(np.sign(b - a) for a, b in itertools.combinations(o, 2)) >= s for o in orders)
    assert p == pytest.approx(at_least / len(orders))


def test_the_normal_approximation_is_close_to_the_exact_p_above_the_exact_range():
    n = EXACT_MAX_N + 1
    rng = np.random.default_rng(0)
    compared = 0
    for _ in range(300):
        s, p = mann_kendall(np.arange(n) * 0.15 + rng.normal(size=n))  # weak trends: p around alpha
        exact = _exact_p(n, (), s)
        if 0.005 < exact < 0.02:  # around alpha
            assert p == pytest.approx(exact, rel=0.2)
            compared += 1
    assert compared >= 10


# --- severity ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "total_pct, severity",
    [(20.0, RegressionSeverity.MINOR), (29.0, RegressionSeverity.MINOR), (31.0, RegressionSeverity.MAJOR),
     (45.0, RegressionSeverity.MAJOR), (55.0, RegressionSeverity.CRITICAL), (200.0, RegressionSeverity.CRITICAL)],
)
def test_severity_is_the_band_of_the_total_change(total_pct, severity):
    verdict = detect_drift(geometric(total_pct))
    assert verdict.total_change_pct == pytest.approx(total_pct)
    assert verdict.is_drift and verdict.severity is severity


def test_a_lowered_floor_still_rates_minor():
    verdict = detect_drift(geometric(10.0), min_change_pct=5.0)
    assert verdict.is_drift and verdict.severity is RegressionSeverity.MINOR
