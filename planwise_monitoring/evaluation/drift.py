"""Gradual drift detection: is a series getting steadily slower (or bigger), run after run?

Pure decisions, no I/O. The caller passes the successive values of one series, oldest first: the
durations of one component, year and scenario over successive runs, or the peak memory of the
successive years of one simulation::

    from planwise_monitoring.evaluation.drift import detect_drift
    from planwise_monitoring.evaluation.regression import RegressionSeverity

    runs = [60.0 * 1.01**i for i in range(30)]  # 1 % slower every run
    verdict = detect_drift(runs)
    assert verdict.is_drift and verdict.severity is RegressionSeverity.MAJOR  # +33.5 % in all
    peaks = [2000.0, 2150.0, 2330.0, 2510.0, 2720.0, 2940.0]  # MB, six simulation years
    assert detect_drift(peaks, min_samples=5, unit="year").is_drift

Why a second detector. :func:`~.regression.detect_regression` compares the newest runs with the
median of the 20 runs before them. That median moves with a creep: a component c % slower every run
is only about 11 c % slower than it (the median sits about 11 runs back), under the 15 % floor
below about 1.3 %/run; above that the creep widens the spread of those 20 runs, so the z-test
rarely passes. Measured, it confirms 0-11 % of creeping series at 0.5, 1 and 2 %/run
(benchmarks/drift_quality.py).

Method
------
1. **Values.** None, NaN, infinite, zero, negative and bool values are dropped (as in regression.py)
   but keep their place in time, so a failed run does not shorten the slope. The last ``window``
   (60) usable values are judged; with fewer than ``min_samples`` (10; the memory caller passes 5)
   there is no verdict ("insufficient history").
2. **Significance: one-sided Mann-Kendall test.** S = sum over pairs i < j of sign(x_j - x_i), and
   p = P(S >= s) if every order of the values were equally likely (no trend). It uses only the
   order of the values, so a spike counts as one large value however large, and the shape of the
   noise (lognormal, bimodal) does not matter. Up to ``EXACT_MAX_N`` (20) values p is exact, ties
   included: the orders of the values counted by their number of later-smaller pairs have the
   q-multinomial coefficient as generating function (the Mahonian numbers without ties), tabulated
   in exact integers and cached. With 5 values the smallest p is 1/120 = 0.0083, so at alpha 0.01
   five years of memory must rise every year. Above 20 values: the normal approximation, variance
   n(n-1)(2n+5)/18 less sum t(t-1)(2t+5)/18 over tie groups of size t, continuity correction;
   around p = 0.01 it is within 12 % of the exact p at 21 values and 4 % at 60.
3. **Size: Theil-Sen slope on log values.** b = the median of the slopes between all pairs of
   (position, log value): robust to spikes (up to 29 % of outlying values), and on log values a
   geometric creep of 1 %/run reads as exp(b) - 1 = 1.0 %/run with lognormal noise symmetric.
   ``total_change_pct`` = exp(b (last position - first position)) - 1: the fitted trend from the
   first to the last value judged.
4. **Decision.** A drift is an increasing trend significant at ``alpha`` (0.01) whose total change
   is more than ``min_change_pct`` (15 %, the seed's MINOR band), so every drift has a severity: the
   seed's bands on the total change, > 15 % MINOR, > 30 % MAJOR, > 50 % CRITICAL. A decreasing
   trend is never drift (its slope is still reported).

Why this method. ``benchmarks/drift_quality.py`` (seed 0, seed 1 in brackets, 100 series per noise
kind and cell; lognormal noise of sigma 5-15 % or two levels 10 % apart, 2.5 % spikes of 1.5-3x)
compares it with an E-Divisive means test as in Apache Otava (the split maximising the energy
statistic, significance by 199 permutations), at the same alpha and floor. Mann-Kendall + Theil-Sen
catches more creeping series in every cell the floor allows: +1 %/run over 20 runs 60.5 % (62.5 %)
against 23.5 % (22.0 %), over 30 runs 94.0 % (94.5 %) against 76.0 % (70.5 %); +0.5 %/run over 40
runs 83.0 % (86.0 %) against 23.5 % (32.0 %); memory growing 5 %/year over 8 years 100 % against
1 % (4 %), over 5 years 90 % (85 %) against 0 % (a permutation test of where a series splits cannot
reach p = 0.01 below 10 values: even a sorted series has p >= 2 / C(n, n/2)). False alarms on
stationary series are alike: judged once at the end 0.0 % (0.2 %) against 0.0 % (0.2 %); judged
after every run from the 10th, 0.52 % (0.45 %) of judgments against 0.17 % (0.25 %), and 3.4 %
(3.5 %) of series ever flagged against 3.4 % (3.9 %) (detect_regression: 7.1 % (7.8 %)). It also
estimates the slope (medians within 0.05 %/run of the true 0.5, 1 and 2 %/run, 0.15 %/year of the
true 3, 5 and 10 %/year of memory), needs no random numbers and is faster: 0.26-0.28 ms per call on
60 values against 0.58-0.84 ms for E-Divisive on a series without change (stopping early) and
2.9-3.2 ms with one (scipy's kendalltau + theilslopes take 1.4-1.8 ms; timings on a shared machine).

Limits
------
- **A step reads as drift** while it is in the window: 15 runs after a +30 % step, 94.5 % (98.5 %)
  of series are flagged, 30 runs after it all of them. :func:`detect_regression` flags steps
  sooner (56 % (62 %) 5 runs after, when this flags 6.5 %); a caller should not raise a drift
  alert for a series with a regression confirmed within the window, or judge only the runs since.
- **Independent runs are assumed.** Runs that come in regimes (a noisy neighbour for a week) are
  autocorrelated, which makes Mann-Kendall over-confident; only the 15 % floor guards against it.
  Not measured.
- **Short noisy series alarm at about alpha per judgment:** up to 1.2 % of the judgments of the
  lognormal series. With 10-20 values at sigma 5-15 %, three quarters of the trends significant by
  chance are also over 15 % in all, so the floor hardly helps there (at 60 values a quarter).
- **Small changes need long series.** Creeps of 0.5 %/run are caught in 45.5 % of series over 30
  runs (+15.6 % in all, just over the floor) and 83-86 % over 40; +1 %/run over 20 runs in 60.5-62.5 %.
  Memory over 5 years: +5 %/year in 85-90 %; +3 %/year (+12.6 % in all, under the floor) only when
  the noise makes the estimate overshoot the floor (16-18 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

import numpy as np

from .regression import MIN_DEGRADATION_PCT, RegressionSeverity, _usable, severity_for

EXACT_MAX_N = 20  # up to this many values the p-value is exact, above it the normal approximation
METHOD_EXACT = "one-sided Mann-Kendall test (exact p) + Theil-Sen slope on log values"
METHOD_NORMAL = "one-sided Mann-Kendall test (normal approximation) + Theil-Sen slope on log values"


@dataclass(frozen=True)
class DriftVerdict:
    """Whether a series (oldest first) has a significant, large enough increasing trend.

        verdict = detect_drift([100.0, 99.0, 101.0, 100.0, 98.0, 102.0, 100.0, 99.0, 101.0, 100.0])
        assert not verdict.is_drift and verdict.severity is None and verdict.samples == 10
        assert verdict.reason.startswith("no drift")

    ``slope_pct_per_run`` is the Theil-Sen trend per step of the series (a run, or a simulation
    year), ``total_change_pct`` the change of the fitted trend from the first to the last value
    judged, ``p_value`` the one-sided Mann-Kendall p-value of an increasing trend. The figures are
    reported whenever there were enough values, also for a decreasing or insignificant trend;
    ``severity`` (the seed's bands on ``total_change_pct``) only for a drift.
    """

    is_drift: bool
    slope_pct_per_run: float | None  # +1.0 = 1 % slower per run; None without enough history
    total_change_pct: float | None  # fitted trend, first judged value -> last
    p_value: float | None  # one-sided: small = significantly increasing
    alpha: float
    severity: RegressionSeverity | None  # only for a drift
    samples: int  # usable values judged (at most ``window``)
    method: str
    reason: str  # why (or why not), for humans


def detect_drift(
    history: Sequence[float],
    *,
    alpha: float = 0.01,
    min_samples: int = 10,
    window: int = 60,
    min_change_pct: float = MIN_DEGRADATION_PCT,
    unit: str = "run",
) -> DriftVerdict:
    """Judge the trend of ``history`` (see the module docstring).

        creep = [60.0 * 1.01**i for i in range(30)]  # 1 % slower every run
        verdict = detect_drift(creep)
        assert verdict.is_drift and round(verdict.slope_pct_per_run, 1) == 1.0

    ``history``: successive durations (or peak memory of successive years), oldest first. Unusable
    values (None, NaN, infinite, zero, negative) are dropped but keep their place in time; the last
    ``window`` usable values are judged. ``unit`` names one step of the series in ``reason`` ("year"
    for memory across simulation years). Raises ``ValueError`` only for invalid parameters.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if min_samples < 3 or window < min_samples:
        raise ValueError(f"need 3 <= min_samples <= window, got min_samples={min_samples}, window={window}")
    if not min_change_pct >= 0:
        raise ValueError(f"min_change_pct must be >= 0, got {min_change_pct}")

    # plain positive finite floats (nearly all values) pass without _usable's slower type checks
    kept = [(i, float(v)) for i, v in enumerate(history)
            if (type(v) is float and 0 < v < math.inf) or _usable(v)][-window:]
    n = len(kept)
    method = METHOD_EXACT if n <= EXACT_MAX_N else METHOD_NORMAL
    if n < min_samples:
        return DriftVerdict(False, None, None, None, alpha, None, n, method,
                            f"insufficient history: {n} usable value(s), need {min_samples}")

    when = np.array([i for i, _ in kept], dtype=float)
    values = np.array([v for _, v in kept])
    s, p = mann_kendall(values)
    slope = theil_sen(when, np.log(values))
    slope_pct = math.expm1(slope) * 100
    total_pct = math.expm1(slope * (when[-1] - when[0])) * 100

    def verdict(reason: str, severity: RegressionSeverity | None = None) -> DriftVerdict:
        return DriftVerdict(severity is not None, slope_pct, total_pct, p, alpha, severity, n, method, reason)

    trend = f"{slope_pct:+.1f} %/{unit} over {n} {unit}s, {total_pct:+.1f} % in all"
    test = f"Mann-Kendall p={p:.2g}"
    if s <= 0 or slope <= 0:
        return verdict(f"no drift: not increasing, {trend} ({test})")
    if p > alpha:
        return verdict(f"no drift: {trend}, not significant ({test} > {alpha:g})")
    if total_pct <= min_change_pct:
        return verdict(f"no drift: {trend}, not more than {min_change_pct:g} % ({test})")
    severity = severity_for(total_pct) or RegressionSeverity.MINOR  # below 15 % only if the floor was lowered
    return verdict(f"drift ({severity.value}): {trend} ({test} <= {alpha:g})", severity)


def mann_kendall(values: np.ndarray) -> tuple[int, float]:
    """(S, the one-sided p-value of an increasing trend) for values oldest first.

    S = number of later-larger pairs minus later-smaller pairs. Exact for up to ``EXACT_MAX_N``
    values (ties included), else the normal approximation with tie-corrected variance and a
    continuity correction.
    """
    n = len(values)
    i, j = _pairs(n)
    s = int(np.sign(values[j] - values[i]).sum())
    ties = tuple(sorted(int(t) for t in np.unique(values, return_counts=True)[1] if t > 1))
    if n <= EXACT_MAX_N:
        return s, _exact_p(n, ties, s)
    var = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties)) / 18
    if var <= 0 or s == 0:
        return s, 0.5 if var > 0 else 1.0
    z = (s - 1 if s > 0 else s + 1) / math.sqrt(var)
    return s, 0.5 * math.erfc(z / math.sqrt(2))


def theil_sen(x: np.ndarray, y: np.ndarray) -> float:
    """The Theil-Sen slope: the median of the slopes between all pairs of points."""
    i, j = _pairs(len(x))
    return float(np.median((y[j] - y[i]) / (x[j] - x[i])))


@lru_cache(maxsize=128)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, 1)  # every pair i < j
    return i, j


def _exact_p(n: int, ties: tuple[int, ...], s: int) -> float:
    """P(S >= s) when every order of the values is equally likely (no trend)."""
    pairs = n * (n - 1) // 2 - sum(t * (t - 1) // 2 for t in ties)  # untied pairs
    cumulative = _discordant_cdf(n, ties)
    # S = pairs - 2 D, where D counts the later-smaller pairs, so S >= s <=> D <= (pairs - s) / 2
    return cumulative[(pairs - s) // 2] / cumulative[-1]


@lru_cache(maxsize=256)
def _discordant_cdf(n: int, ties: tuple[int, ...]) -> tuple[int, ...]:
    """Cumulative counts of the orderings of n values (with tie groups ``ties``) by their number D
    of later-smaller pairs. Their generating function is the q-multinomial coefficient
    [n]_q! / prod [t]_q! with [k]_q! = prod_{m<=k} (1 + q + ... + q^(m-1)) (Mahonian numbers without
    ties), built by multiplying and dividing by these polynomials in exact integers."""
    counts = [1]
    for m in range(2, n + 1):  # times (1 + q + ... + q^(m-1)): a running sum over m terms
        prefix = [0, *accumulate(counts)]
        counts = [prefix[min(d + 1, len(counts))] - prefix[max(d - m + 1, 0)] for d in range(len(counts) + m - 1)]
    for t in ties:
        for m in range(2, t + 1):  # divided by (1 + q + ... + q^(m-1)): the inverse recurrence
            quotient: list[int] = []
            for d in range(len(counts) - m + 1):
                quotient.append(counts[d] - sum(quotient[max(d - m + 1, 0):d]))
            counts = quotient
    return tuple(accumulate(counts))
