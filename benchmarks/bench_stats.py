"""Speed of medlib.stats against the straightforward implementations it replaces.

Run by hand (not a test): ``.venv/bin/python benchmarks/bench_stats.py``. ``run()`` returns the rows as
dictionaries so ``medlib bench`` can collect them.

1. DeLong AUC CI: the fast midrank algorithm of Sun & Xu (2014), O(n log n), at n = 1,000,000, against the
   original DeLong et al. (1988) computation from the m x n kernel matrix, O(n^2), measured at n = 5,000 (a
   size it can hold in memory) and extrapolated to 1,000,000 by the n^2 / (n log n) ratio of the costs.
2. Stratified bootstrap of the AUC, 2,000 replicates at n = 10,000: medlib's vectorised weighted-AUC
   bootstrap against a Python loop over ``sklearn.metrics.roc_auc_score`` (200 replicates timed, scaled to
   2,000), in the same run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from medlib.stats import auc_ci, bootstrap_auc


def _best_time(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Best wall-clock time of ``repeat`` calls, in seconds."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.round(rng.normal(size=n) + y, 3)  # rounded: realistic ties


def naive_delong_ci(y: np.ndarray, s: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """DeLong et al. (1988) from the full case x control kernel matrix: O(m n) time and memory."""
    x, z = s[y == 1], s[y == 0]
    psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    value = psi.mean()
    se = math.sqrt(v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(z))
    half = stats.norm.ppf(0.5 + level / 2) * se
    return value, max(0.0, value - half), min(1.0, value + half)


def bench_delong(n_fast: int = 1_000_000, n_naive: int = 5_000, seed: int = 0) -> list[dict[str, Any]]:
    """Fast DeLong at ``n_fast`` and at ``n_naive`` versus the O(n^2) DeLong at ``n_naive``, extrapolated."""
    y_big, s_big = _data(n_fast, seed)
    y_small, s_small = _data(n_naive, seed + 1)
    fast_small = auc_ci(y_small, s_small)
    assert abs(fast_small.lo - naive_delong_ci(y_small, s_small)[1]) < 1e-9  # same answer
    t_fast_big = _best_time(lambda: auc_ci(y_big, s_big))
    t_fast_small = _best_time(lambda: auc_ci(y_small, s_small))
    t_naive_small = _best_time(lambda: naive_delong_ci(y_small, s_small))
    growth = (n_fast**2 / (n_fast * math.log(n_fast))) / (n_naive**2 / (n_naive * math.log(n_naive)))
    t_naive_big = t_naive_small * (n_fast / n_naive) ** 2
    return [
        {"task": "DeLong AUC CI", "method": "fast midrank (Sun & Xu 2014), medlib", "n": n_fast,
         "seconds": t_fast_big, "note": "measured"},
        {"task": "DeLong AUC CI", "method": "fast midrank (Sun & Xu 2014), medlib", "n": n_naive,
         "seconds": t_fast_small, "note": "measured"},
        {"task": "DeLong AUC CI", "method": "naive O(n^2) kernel matrix (DeLong 1988)", "n": n_naive,
         "seconds": t_naive_small, "note": f"measured; {t_naive_small / t_fast_small:.1f}x the fast one"},
        {"task": "DeLong AUC CI", "method": "naive O(n^2) kernel matrix (DeLong 1988)", "n": n_fast,
         "seconds": t_naive_big,
         "note": (f"extrapolated x(n ratio)^2; speed-up at n={n_fast:,} "
                  f"~{t_naive_small / t_fast_small * growth:,.0f}x by n^2/(n log n) "
                  f"(ratio at {n_naive:,} x {growth:,.0f}); {t_naive_big / t_fast_big:,.0f}x vs measured fast")},
    ]


def sklearn_loop_bootstrap(y: np.ndarray, s: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Stratified bootstrap as usually written: a Python loop calling roc_auc_score per replicate."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    out = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        out[b] = roc_auc_score(y[idx], s[idx])
    return out


def bench_bootstrap(n: int = 10_000, n_boot: int = 2_000, n_loop: int = 200, seed: int = 0
                    ) -> list[dict[str, Any]]:
    """Vectorised stratified bootstrap versus a scikit-learn loop (``n_loop`` replicates, scaled)."""
    y, s = _data(n, seed)
    t_fast = _best_time(lambda: bootstrap_auc(y, s, n_boot=n_boot, seed=seed), repeat=2)
    try:
        t_loop = _best_time(lambda: sklearn_loop_bootstrap(y, s, n_loop, seed), repeat=1) * n_boot / n_loop
    except ImportError:
        t_loop = math.nan
    return [
        {"task": f"stratified bootstrap AUC, {n_boot:,} replicates", "method": "vectorised weighted AUC, medlib",
         "n": n, "seconds": t_fast, "note": "measured"},
        {"task": f"stratified bootstrap AUC, {n_boot:,} replicates",
         "method": "Python loop of sklearn roc_auc_score", "n": n, "seconds": t_loop,
         "note": f"{n_loop} replicates measured, x{n_boot / n_loop:g}; {t_loop / t_fast:.0f}x slower"},
    ]


def run() -> list[dict[str, Any]]:
    """All benchmark rows: task, method, n, seconds, note."""
    return bench_delong() + bench_bootstrap()


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as a Markdown table."""
    lines = ["| task | method | n | seconds | note |", "|---|---|---:|---:|---|"]
    lines += [f"| {r['task']} | {r['method']} | {r['n']:,} | {r['seconds']:.4g} | {r['note']} |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_table(run()))
