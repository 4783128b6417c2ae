from __future__ import annotations

import math

import numpy as np
import pytest

from planwise_monitoring.evaluation.regression import (
    RegressionSeverity,
    detect_regression,
    seed_rule,
    severity_for,
)

BASE = 100.0


def noisy(seed: int, n: int = 30, sigma: float = 0.05, base: float = BASE) -> list[float]:
    """A history of ``n`` runs with multiplicative lognormal noise, reproducible by ``seed``."""
    return (base * np.random.default_rng(seed).lognormal(0.0, sigma, n)).tolist()


def flat(n: int = 30, base: float = BASE) -> list[float]:
    return [base] * n


def spread10(n: int = 10) -> list[float]:
    """A history with median BASE and robust spread exactly 10 % of it (MAD * 1.4826 = 10)."""
    a = 10.0 / 1.4826
    return [BASE, BASE + a, BASE - a] * n


def with_spike(history: list[float], at: int, factor: float = 3.0) -> list[float]:
    spiked = list(history)
    spiked[at] *= factor
    return spiked


# --- no verdict without enough history -------------------------------------------------------

@pytest.mark.parametrize(
    "history",
    [
        [],
        [100.0],
        [100.0, 101.0, 99.0, 100.0],  # 4 < min_samples
        [100.0, 101.0, 99.0, 100.0, math.nan, 0.0, -5.0, math.inf],  # only 4 usable
    ],
)
def test_insufficient_history_gives_no_verdict(history):
    verdict = detect_regression(history, [300.0, 300.0])
    assert not verdict.is_regression and not verdict.suspected
    assert verdict.severity is None and verdict.baseline_seconds is None
    assert verdict.samples == sum(1 for v in history if math.isfinite(v) and v > 0)
    assert verdict.reason.startswith("insufficient history")


def test_min_samples_is_configurable():
    history = [100.0, 101.0, 99.0]
    assert detect_regression(history, [200.0, 200.0], min_samples=3).is_regression
    assert not detect_regression(history, [200.0, 200.0], min_samples=4).is_regression


# --- no regression -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "history, under_test",
    [
        (flat(), [101.0, 101.0]),  # flat history, +1 %: the MAD floor keeps it insignificant
        (flat(), [105.0, 105.0]),  # +5 %: significant against a flat history, but below 15 %
        (flat(), [110.0, 110.0]),  # +10 % step in a flat history: the relative floor
        (noisy(1, sigma=0.01), [110.0, 110.0]),  # near-flat: z is huge, the change is still small
        (noisy(2), [BASE, BASE]),  # noisy, no change
        (noisy(3, sigma=0.15), noisy(4, n=2, sigma=0.15)),  # very noisy, no change
        (noisy(5), [60.0, 60.0]),  # 40 % faster
        (flat(), [50.0, 50.0]),
    ],
)
def test_no_regression(history, under_test):
    verdict = detect_regression(history, under_test)
    assert not verdict.is_regression and not verdict.suspected and verdict.severity is None
    assert verdict.reason.startswith("no regression")


@pytest.mark.parametrize("seed", range(20))
def test_unchanged_noisy_histories_do_not_alarm(seed):
    runs = noisy(seed, n=32, sigma=0.08)
    assert not detect_regression(runs[:30], runs[30:]).is_regression


@pytest.mark.parametrize("at", [0, 15, 28, 29])
def test_a_spike_in_the_history_neither_hides_nor_causes_anything(at):
    history = with_spike(noisy(7), at, factor=3.0)
    quiet = detect_regression(history, [BASE, BASE])
    assert not quiet.is_regression and not quiet.suspected
    assert quiet.baseline_seconds == pytest.approx(BASE, rel=0.05)  # the median ignores the spike
    slow = detect_regression(history, [BASE * 1.4, BASE * 1.4])
    assert slow.is_regression and slow.severity is RegressionSeverity.MAJOR


@pytest.mark.parametrize(
    "under_test",
    [
        300.0,  # a single value: nothing to confirm it with
        [300.0],
        [BASE, 300.0],  # the run before it was normal
        [BASE, BASE, 300.0],
        [math.nan, 300.0],  # an invalid run cannot confirm
    ],
)
def test_a_spike_at_the_current_position_is_only_suspected(under_test):
    verdict = detect_regression(noisy(8), under_test)
    assert verdict.suspected and not verdict.is_regression and verdict.severity is None
    assert verdict.current_seconds == 300.0
    assert verdict.reason.startswith("suspected")


def test_a_confirmation_that_arrives_later_does_not_count():
    # The newest run is normal: whatever happened before, nothing to report now.
    verdict = detect_regression(noisy(9), [300.0, BASE])
    assert not verdict.is_regression and not verdict.suspected


# --- pooled confirmation ------------------------------------------------------------------------
# Against flat() the spread is the 2 % floor: a run at BASE * (1 + p) has z = 50 p.
# Against spread10() a run p % slower has z = p / 10; the mean of two such runs z = sqrt(2) p / 10.

@pytest.mark.parametrize(
    "history, under_test, regression, suspected",
    [
        (flat(), [BASE, 300.0], False, True),  # spike + normal run: the normal run fails its margin
        (flat(), [300.0, BASE], False, False),  # spike then a normal run: nothing now
        (flat(), [BASE * 1.05, 300.0], False, True),  # spike + a run only 5 % slower: still no
        (spread10(), [BASE * 1.05, 300.0], False, True),  # same in a noisy history
        (spread10(), [BASE * 1.27, BASE * 1.27], True, False),  # z 2.7 each: not alone, together 3.8
        (spread10(), [BASE * 1.15, BASE * 1.5], False, True),  # one run not past the 15 % floor
        (spread10(), [BASE * 1.19, BASE * 1.5], False, True),  # one run z 1.9 < CONFIRM_MIN_Z
        (spread10(), [BASE * 1.21, BASE * 1.5], True, False),  # z 2.1 and 5: confirmed
        (spread10(), [BASE * 1.18, BASE * 1.18], False, False),  # both slower, together z 2.5: noise
    ],
)
def test_pooled_confirmation(history, under_test, regression, suspected):
    verdict = detect_regression(history, under_test)
    assert (verdict.is_regression, verdict.suspected) == (regression, suspected)


def test_two_moderately_slow_runs_confirm_together_but_not_alone():
    history = spread10()
    for run in ([BASE * 1.27], BASE * 1.27):
        alone = detect_regression(history, run)
        assert not alone.is_regression and not alone.suspected  # z 2.7 < 3.75: within noise alone
        assert "within noise" in alone.reason
    together = detect_regression(history, [BASE * 1.27, BASE * 1.27])
    assert together.is_regression and together.confirmations == 2
    assert together.robust_z == pytest.approx(27 / 10 * math.sqrt(2))
    assert together.degradation_pct == pytest.approx(27.0)
    assert together.severity is RegressionSeverity.MINOR


# --- confirmed regressions and their severity --------------------------------------------------

@pytest.mark.parametrize(
    "step_pct, severity",
    [
        (20, RegressionSeverity.MINOR),
        (40, RegressionSeverity.MAJOR),
        (60, RegressionSeverity.CRITICAL),
    ],
)
@pytest.mark.parametrize("seed", [10, 11, 12])
def test_a_step_confirmed_by_two_runs_gets_the_seed_band(step_pct, severity, seed):
    runs = noisy(seed, n=32, sigma=0.02)
    runs[30:] = [v * (1 + step_pct / 100) for v in runs[30:]]
    verdict = detect_regression(runs[:30], runs[30:])
    assert verdict.is_regression and not verdict.suspected
    assert verdict.severity is severity
    assert verdict.severity is severity_for(verdict.degradation_pct)
    assert verdict.samples == 20  # the window
    assert verdict.confirmations == 2
    assert verdict.current_seconds == runs[-1]


def test_severity_is_banded_on_the_mean_of_the_judged_runs():
    verdict = detect_regression(flat(), [145.0, 165.0, 145.0])  # judged: 165, 145 -> mean +55 %
    assert verdict.is_regression and verdict.degradation_pct == pytest.approx(55.0)
    assert verdict.severity is RegressionSeverity.CRITICAL


@pytest.mark.parametrize(
    "degradation, severity",
    [(15.0, None), (15.1, RegressionSeverity.MINOR), (30.0, RegressionSeverity.MINOR),
     (30.1, RegressionSeverity.MAJOR), (50.0, RegressionSeverity.MAJOR), (50.1, RegressionSeverity.CRITICAL),
     (-40.0, None)],
)
def test_seed_bands_are_strictly_greater_than(degradation, severity):
    assert severity_for(degradation) is severity


@pytest.mark.parametrize("confirm_runs", [1, 2, 3])
def test_confirm_runs(confirm_runs):
    history = noisy(13, sigma=0.02)
    enough = detect_regression(history, [150.0] * confirm_runs, confirm_runs=confirm_runs)
    assert enough.is_regression
    if confirm_runs > 1:
        short = detect_regression(history, [150.0] * (confirm_runs - 1), confirm_runs=confirm_runs)
        assert short.suspected and not short.is_regression


def test_a_small_step_in_a_noisy_history_needs_more_than_the_relative_floor():
    # +20 % is past the relative floor but only about one sigma of this noise: not statistically real.
    verdict = detect_regression(noisy(14, sigma=0.2), [BASE * 1.2, BASE * 1.2])
    assert not verdict.is_regression and not verdict.suspected
    assert "within noise" in verdict.reason


@pytest.mark.parametrize("history", [flat(), noisy(18, sigma=0.01)])
def test_a_significant_but_small_step_is_below_the_relative_floor(history):
    # +10 % is many MADs away from a (near-)flat history, but smaller than the 15 % floor.
    verdict = detect_regression(history, [BASE * 1.1, BASE * 1.1])
    assert verdict.robust_z is not None and verdict.robust_z > 3.5
    assert not verdict.is_regression and not verdict.suspected
    assert "too small" in verdict.reason


# --- robustness --------------------------------------------------------------------------------

def test_non_finite_and_non_positive_history_values_are_ignored():
    clean = noisy(15, n=10, sigma=0.02)
    dirty = [math.nan, *clean[:5], math.inf, -math.inf, 0.0, -3.0, None, *clean[5:]]
    a = detect_regression(clean, [150.0, 150.0])
    b = detect_regression(dirty, [150.0, 150.0])  # type: ignore[arg-type]
    assert a == b and b.samples == 10 and b.is_regression


@pytest.mark.parametrize("current", [math.nan, math.inf, 0.0, -1.0])
def test_an_invalid_current_value_gives_no_verdict(current):
    verdict = detect_regression(noisy(16), current)
    assert not verdict.is_regression and not verdict.suspected
    assert verdict.reason.startswith("no verdict")


def test_accepts_numpy_inputs():
    history = np.asarray(noisy(17, sigma=0.02))
    assert detect_regression(history, np.asarray([150.0, 150.0])).is_regression
    assert detect_regression(history, np.float64(150.0)).suspected


@pytest.mark.parametrize(
    "kwargs",
    [dict(min_samples=0), dict(min_samples=30, window=20), dict(confirm_runs=0), dict(z_threshold=-1)],
)
def test_invalid_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        detect_regression(flat(), 100.0, **kwargs)


# --- the seed rule, kept for comparison --------------------------------------------------------

@pytest.mark.parametrize(
    "history, current, expected",
    [
        ([100.0] * 5, 115.0, None),
        ([100.0] * 5, 116.0, RegressionSeverity.MINOR),
        ([100.0] * 5, 131.0, RegressionSeverity.MAJOR),
        ([100.0] * 5, 151.0, RegressionSeverity.CRITICAL),
        ([1000.0] * 10 + [100.0] * 5, 116.0, RegressionSeverity.MINOR),  # only the last 5 count
        ([100.0, 100.0, 100.0, 100.0, 300.0], 116.0, None),  # a spike in the mean hides a real change
        ([], 500.0, None),
    ],
)
def test_seed_rule(history, current, expected):
    assert seed_rule(history, current) is expected
