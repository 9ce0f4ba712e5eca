"""Multiple-testing adjustment of p-values (Holm 1979, Bonferroni), by statsmodels' ``multipletests``."""

from __future__ import annotations

from typing import Any

import numpy as np
from statsmodels.stats.multitest import multipletests

ADJUST_METHODS = ("holm", "bonferroni")


def adjust_pvalues(p_values: Any, method: str | None = "holm") -> np.ndarray:
    """Adjust p-values for multiple comparisons.

    Holm's step-down method (Holm 1979, *Scand J Stat* 6:65-70) or Bonferroni, computed by statsmodels'
    ``multipletests(p, method=method)`` (as R's ``p.adjust``: capped at 1 and, for Holm, made monotone).
    This wrapper adds what ``multipletests`` does not do: NaN p-values are left as NaN and not counted in
    the family, p-values outside [0, 1] are an error, and ``method=None`` returns the p-values unadjusted.

    Args:
        p_values: The family of p-values (1-D).
        method: ``"holm"`` (default), ``"bonferroni"``, or ``None`` for no adjustment (a copy is returned).

    Returns:
        Adjusted p-values in the input order.

    Raises:
        ValueError: Unknown method, or p-values outside [0, 1].

    Example:
        >>> adjust_pvalues([0.01, 0.04, 0.03]).round(4).tolist()
        [0.03, 0.06, 0.06]
    """
    p = np.array(p_values, dtype=np.float64, ndmin=1)
    if method is not None and method not in ADJUST_METHODS:
        raise ValueError(f"Unknown adjust method {method!r}. Available: {list(ADJUST_METHODS)} or None")
    ok = ~np.isnan(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError(f"p-values must lie in [0, 1]; got min {p[ok].min():.6g}, max {p[ok].max():.6g}")
    if method is None or not ok.any():
        return p
    out = p.copy()
    out[ok] = multipletests(p[ok], method=method)[1]
    return out
