"""Quality of gradual drift detection: false alarms, recall and slope, next to E-Divisive and detect_regression.

Three detectors, run side by side on the same synthetic series:

  detect_drift       planwise_monitoring.evaluation.drift (defaults: one-sided Mann-Kendall at
                     alpha 0.01 and a Theil-Sen slope on log values, more than 15 % in all),
  E-Divisive         the change-point test of Apache Otava (Matteson & James' E-Divisive means),
                     written here for comparison: on log values, the split maximising the
                     energy-distance statistic, significant if fewer than alpha of 199 permutations
                     of the series reach it (stopped after 10 or 50 permutations once 2 have: then
                     p > 0.01 for sure); a drift if significant and the later segment's geometric
                     mean is more than 15 % above the earlier one's,
  detect_regression  planwise_monitoring.evaluation.regression (defaults), judged as the sensor
                     does: the last 2 runs against all earlier ones.

Series (``--series`` of each kind per table cell, ``--seed``):

  noise      "lognormal": multiplicative lognormal noise, sigma drawn per series from 5-15 %;
             "bimodal": each run picks one of two levels 10 % apart (the share of the upper level
             drawn per series from 30-70 %), times lognormal noise of sigma 2-5 %. Both kinds get
             spikes: each run with probability 2.5 % is 1.5-3x slower.
  stationary no trend, 20-60 runs: false alarms, judged once at the end of the series, and
             judged after every run from the 10th on (what a sensor does): the share of all those
             judgments that alarm, and the share of series ever flagged.
  creeping   geometric growth of 0.5, 1 or 2 % per run over 20, 30, 40 or 60 runs, same noise:
             recall judged at the end, and detect_drift's median estimated slope. Cells whose true
             total change is not above the 15 % floor are marked "under the floor": by design they
             are flagged only when the noise makes the estimated change overshoot the floor.
  step       a +30 % step (no creep) in 60 runs, judged 5, 15 and 30 runs after it: a step is a
             monotone change too, so a trend test flags it while it stays in its window.
  memory     peak MB across 5, 8 or 10 simulation years, growing 0, 3, 5 or 10 % per year, with
             lognormal noise of sigma 1-3 % and no spikes; judged at the end with min_samples=5
             (detect_regression with min_samples=3, else it never has enough years). Cells marked as
             in the creeping table.

Timing: microseconds per call on 60 values (scipy's kendalltau and theilslopes for reference).

    .venv/bin/python benchmarks/drift_quality.py               # 100 series per cell, ~30 s
    .venv/bin/python benchmarks/drift_quality.py --series 50   # a quick look

The tables are Markdown. It is a benchmark, not a test: it exits 0 whatever the verdict.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from planwise_monitoring.evaluation.drift import detect_drift
from planwise_monitoring.evaluation.regression import detect_regression

ALPHA = 0.01
FLOOR_PCT = 15.0  # the MINOR band: the smallest change any of the three detectors reports
MIN_SAMPLES = 10  # detect_drift's default; also where "ever flagged" starts judging
MEMORY_MIN_SAMPLES = 5
LENGTHS = (20, 30, 40, 60)
KINDS = ("lognormal", "bimodal")
CREEP_PCT = (0.5, 1.0, 2.0)
STEP_PCT, STEP_RUNS, STEP_JUDGED_AFTER = 30.0, 60, (5, 15, 30)
MEMORY_YEARS = (5, 8, 10)
MEMORY_GROWTH_PCT = (0.0, 3.0, 5.0, 10.0)
PERMUTATIONS = 199  # E-Divisive: p = (1 + permutations reaching the statistic) / 200

Judge = Callable[[Sequence[float], int], bool]


# --- series -----------------------------------------------------------------------------------

def noise(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    """Multiplicative noise factors of one series of ``n`` runs."""
    if kind == "lognormal":
        factors = rng.lognormal(0.0, rng.uniform(0.05, 0.15), n)
    else:
        upper = rng.random(n) < rng.uniform(0.3, 0.7)
        factors = np.where(upper, 1.10, 1.0) * rng.lognormal(0.0, rng.uniform(0.02, 0.05), n)
    spikes = rng.random(n) < 0.025
    factors[spikes] *= rng.uniform(1.5, 3.0, spikes.sum())
    return factors


def durations(rng: np.random.Generator, n: int, kind: str, creep_pct: float = 0.0) -> list[float]:
    """Execution times of ``n`` successive runs, ``creep_pct`` % slower every run."""
    trend = (1 + creep_pct / 100) ** np.arange(n)
    return (rng.uniform(10, 300) * trend * noise(rng, n, kind)).tolist()


def memory(rng: np.random.Generator, years: int, growth_pct: float) -> list[float]:
    """Peak memory (MB) of successive simulation years, growing ``growth_pct`` % a year."""
    trend = (1 + growth_pct / 100) ** np.arange(years)
    return (rng.uniform(500, 8000) * trend * rng.lognormal(0.0, rng.uniform(0.01, 0.03), years)).tolist()


# --- the alternative: E-Divisive means (Apache Otava), one change point ------------------------

def _best_split(ys: np.ndarray, min_size: int) -> tuple[np.ndarray, np.ndarray]:
    """For each series of a batch (b, n): the largest E-Divisive statistic
    q(m) = m k / n * (2 mean|x - y| - mean|x - x'| - mean|y - y'|) over the splits into the first m and
    the last k = n - m values (U-statistics within the segments), and the m reaching it."""
    n = ys.shape[-1]
    distances = ys[:, :, None] - ys[:, None, :]
    np.abs(distances, out=distances)  # in place: a second temporary this size costs more than the arithmetic
    m = np.arange(min_size, n - min_size + 1)
    k = n - m
    rows = distances.sum(2).cumsum(1)  # the first i + 1 rows in full
    below = np.einsum("bij,ij->bi", distances, np.tri(n, k=-1, dtype=ys.dtype)).cumsum(1)  # pairs j < i
    left = 2 * below[:, m - 1]  # ordered pairs within the first m values
    cross = rows[:, m - 1] - left
    right = rows[:, -1:] - left - 2 * cross
    q = m * k / n * (2 * cross / (m * k) - left / (m * (m - 1)) - right / (k * (k - 1)))
    best = q.argmax(1)
    return q[np.arange(len(q)), best], m[best]


def e_divisive(values: Sequence[float], rng: np.random.Generator, *, min_samples: int = MIN_SAMPLES,
               window: int = 60) -> tuple[bool, float | None]:
    """(is drift, change % between the segments' geometric means) for values oldest first."""
    y = np.log(np.asarray([v for v in values if v > 0], dtype=float)[-window:]).astype(np.float32)  # float32: speed
    n = len(y)
    if n < min_samples:
        return False, None
    min_size = 3 if n >= 8 else 2
    q, m = _best_split(y[None], min_size)
    change = float(np.expm1(y[m[0]:].mean() - y[: m[0]].mean()) * 100)
    reached, done = 0, 0
    allowed = int(ALPHA * (PERMUTATIONS + 1)) - 1  # more permutations reaching q: p > alpha
    for batch in (10, 40, PERMUTATIONS - 50):  # most series without a change stop after 10 or 50
        shuffled = rng.permuted(np.tile(y, (batch, 1)), axis=1)
        # a relative tolerance, so that an order with the same split as the data (summed in another
        # order in float32) counts as reaching it
        reached += int((_best_split(shuffled, min_size)[0] >= q[0] * (1 - 1e-5)).sum())
        done += batch
        if reached > allowed:
            return False, change
    p = (1 + reached) / (1 + done)
    return bool(p <= ALPHA and change > FLOOR_PCT), change


# --- the three judges --------------------------------------------------------------------------

def judges(rng: np.random.Generator, regression_min_samples: int = 5) -> dict[str, Judge]:
    shuffles = np.random.default_rng(int(rng.integers(2**63)))  # so the series do not depend on E-Divisive

    def drift(series: Sequence[float], min_samples: int) -> bool:
        return detect_drift(series, min_samples=min_samples).is_drift

    def edivisive(series: Sequence[float], min_samples: int) -> bool:
        return e_divisive(series, shuffles, min_samples=min_samples)[0]

    def regression(series: Sequence[float], min_samples: int) -> bool:
        return detect_regression(series[:-2], series[-2:], min_samples=regression_min_samples).is_regression

    return {"detect_drift": drift, "E-Divisive": edivisive, "detect_regression": regression}


def pct(part: float, whole: float, digits: int = 1) -> str:
    return f"{100.0 * part / whole:.{digits}f} %" if whole else "-"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


# --- the measurements --------------------------------------------------------------------------

def false_alarms(rng: np.random.Generator, series: int) -> None:
    judge = judges(rng)
    names = list(judge)
    rows, totals = [], {(n, w): 0 for n in names for w in ("end", "each", "ever", "looks")}
    for kind in KINDS:
        for length in LENGTHS:
            counts = {(n, w): 0 for n in names for w in ("end", "each", "ever", "looks")}
            for _ in range(series):
                runs = durations(rng, length, kind)
                for name, flags in judge.items():
                    looks = [flags(runs[:t], MIN_SAMPLES) for t in range(MIN_SAMPLES, length + 1)]
                    counts[name, "end"] += looks[-1]
                    counts[name, "each"] += sum(looks)
                    counts[name, "ever"] += any(looks)
                    counts[name, "looks"] += len(looks)
            for key, count in counts.items():
                totals[key] += count
            rows.append([kind, str(length)] + [cell(counts, n, series) for n in names])
    whole = series * len(KINDS) * len(LENGTHS)
    rows.append(["**all**", ""] + [f"**{cell(totals, n, whole)}**" for n in names])
    print(f"### False alarms on stationary series ({series} series per row): judged at the end / share of all "
          f"judgments (after every run from the {MIN_SAMPLES}th on, as a sensor does) / ever flagged in those\n")
    table(["noise", "runs", *names], rows)


def cell(counts: dict[tuple[str, str], int], name: str, series: int) -> str:
    return (f"{pct(counts[name, 'end'], series)} / {pct(counts[name, 'each'], counts[name, 'looks'], 2)} / "
            f"{pct(counts[name, 'ever'], series)}")


def recall(rng: np.random.Generator, series: int) -> None:
    judge = judges(rng)
    names = list(judge)
    rows = []
    for creep in CREEP_PCT:
        for length in LENGTHS:
            true_total = ((1 + creep / 100) ** (length - 1) - 1) * 100
            hits = dict.fromkeys(names, 0)
            slopes = []
            for i in range(series * len(KINDS)):
                runs = durations(rng, length, KINDS[i % len(KINDS)], creep)
                for name, flags in judge.items():
                    hits[name] += flags(runs, MIN_SAMPLES)
                slopes.append(detect_drift(runs).slope_pct_per_run)
            mark = " (under the floor)" if true_total <= FLOOR_PCT else ""
            rows.append([f"+{creep:g} %/run", str(length), f"{true_total:+.1f} %{mark}",
                         *[pct(hits[n], series * len(KINDS)) for n in names],
                         f"{statistics.median(s for s in slopes if s is not None):+.2f}"])
    print(f"### Recall on creeping series ({series} of each noise kind per row), judged at the end\n")
    table(["creep", "runs", "true total", *names, "detect_drift median slope %/run"], rows)


def steps(rng: np.random.Generator, series: int) -> None:
    judge = judges(rng)
    names = list(judge)
    rows = []
    for after in STEP_JUDGED_AFTER:
        hits = dict.fromkeys(names, 0)
        for i in range(series * len(KINDS)):
            runs = durations(rng, STEP_RUNS, KINDS[i % len(KINDS)])
            step_at = STEP_RUNS - after
            runs = runs[:step_at] + [v * (1 + STEP_PCT / 100) for v in runs[step_at:]]
            for name, flags in judge.items():
                hits[name] += flags(runs, MIN_SAMPLES)
        rows.append([f"{after} runs after it", *[pct(hits[n], series * len(KINDS)) for n in names]])
    print(f"### A +{STEP_PCT:g} % step in {STEP_RUNS} runs (no creep), {series} of each noise kind per row: "
          "share flagged\n")
    table(["judged", *names], rows)


def memory_growth(rng: np.random.Generator, series: int) -> None:
    judge = judges(rng, regression_min_samples=3)
    names = list(judge)
    rows = []
    for growth in MEMORY_GROWTH_PCT:
        for years in MEMORY_YEARS:
            true_total = ((1 + growth / 100) ** (years - 1) - 1) * 100
            hits = dict.fromkeys(names, 0)
            slopes = []
            for _ in range(series):
                peaks = memory(rng, years, growth)
                for name, flags in judge.items():
                    hits[name] += flags(peaks, MEMORY_MIN_SAMPLES)
                slopes.append(detect_drift(peaks, min_samples=MEMORY_MIN_SAMPLES).slope_pct_per_run)
            mark = " (false alarms)" if not growth else " (under the floor)" if true_total <= FLOOR_PCT else ""
            rows.append([f"+{growth:g} %/year", str(years), f"{true_total:+.1f} %{mark}",
                         *[pct(hits[n], series) for n in names],
                         f"{statistics.median(s for s in slopes if s is not None):+.2f}"])
    print(f"### Memory across simulation years ({series} series per row), judged at the end, min_samples="
          f"{MEMORY_MIN_SAMPLES}\n")
    table(["growth", "years", "true total", *names, "detect_drift median slope %/year"], rows)


def timing(rng: np.random.Generator) -> None:
    flat = [durations(rng, 60, "lognormal") for _ in range(20)]  # calls cycle through 20 series
    creep = [durations(rng, 60, "lognormal", 1.0) for _ in range(20)]
    x = np.arange(60)
    cases: list[tuple[str, list[list[float]], Callable[[list[float]], object]]] = [
        ("detect_drift (normal approximation)", flat, detect_drift),
        ("detect_drift, the last 20 values (exact p)", flat, lambda v: detect_drift(v[-20:])),
        ("detect_regression", flat, lambda v: detect_regression(v[:-2], v[-2:])),
        ("E-Divisive, no change (most stop after 10 or 50 permutations)", flat, lambda v: e_divisive(v, rng)),
        ("E-Divisive, +1 %/run (all 199 permutations)", creep, lambda v: e_divisive(v, rng)),
        ("scipy kendalltau + theilslopes (reference)", creep,
         lambda v: (stats.kendalltau(x, v), stats.theilslopes(np.log(v), x))),
    ]
    rows = []
    for name, inputs, call in cases:
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < 0.5:
            call(inputs[calls % len(inputs)])
            calls += 1
        rows.append([name, f"{(time.perf_counter() - started) / calls * 1e6:,.0f}"])
    print("### Time per call on 60 values\n")
    table(["call", "µs"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--series", type=int, default=100, help="series of each kind per table row")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print(f"## Drift detection quality (seed {args.seed}, {args.series} series per kind and row)\n")
    false_alarms(rng, args.series)
    recall(rng, args.series)
    steps(rng, args.series)
    memory_growth(rng, args.series)
    timing(rng)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
