"""Small frozen result objects returned by :mod:`medlib.stats`."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval.

    Attributes:
        value: The point estimate on the full data.
        lo: Lower confidence limit.
        hi: Upper confidence limit.
        method: How the interval was computed, in words (e.g. ``"DeLong (Sun & Xu 2014)"``).
    """

    value: float
    lo: float
    hi: float
    method: str

    def as_text(self, digits: int = 3) -> str:
        """Format as ``"0.824 (0.749-0.899)"`` for tables; NaN prints as ``"NA"``."""
        if math.isnan(self.value):
            return "NA"
        return f"{self.value:.{digits}f} ({self.lo:.{digits}f}-{self.hi:.{digits}f})"


@dataclass(frozen=True)
class PairedTest:
    """A test comparing two AUCs, with the difference and its confidence interval.

    Attributes:
        statistic: Test statistic (Z for the paired DeLong test, D for the unpaired one).
        p_value: Two-sided p-value.
        diff: AUC of the first curve minus AUC of the second.
        lo: Lower confidence limit of ``diff``.
        hi: Upper confidence limit of ``diff``.
        method: The test, in words.
        df: Degrees of freedom of the reference t distribution (``inf`` for a normal reference).
    """

    statistic: float
    p_value: float
    diff: float
    lo: float
    hi: float
    method: str
    df: float = math.inf
