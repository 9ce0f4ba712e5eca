"""Sample size and precision: Riley et al.'s minimum size of a development set, and the precision a validation set
of a given size can give.

**Development** (Riley et al., *Stat Med* 2019;38:1276-96 and *BMJ* 2020;368:m441; binary outcome): the largest
of (i) n giving an expected uniform shrinkage S >= 0.9, ``n = p / ((S - 1) ln(1 - R2_CS / S))``; (ii) n giving an
optimism of at most 0.05 in Nagelkerke's R2, criterion (i) with ``S = R2_CS / (R2_CS + 0.05 max R2_CS)``; (iii)
n estimating the overall risk within +-0.05, ``n = (z / 0.05)^2 p (1 - p)``. They need the anticipated Cox-Snell R2
of the model; :func:`anticipated_r2cs` gives it from an anticipated AUC (Riley et al. 2021's binormal
approximation, as ``pmsampsize``'s ``cstat2rsq``). ``pmsampsize`` itself needs Python >= 3.12, so these closed
forms are written here and checked against the published worked example (Chagas disease: R2_CS 0.288, 24
parameters, prevalence 0.174: n = 623, 668 and 221, minimum 668, EPP 4.84) and the package's own test cases.
Like the package (and the paper's arithmetic), max R2_CS is rounded to 2 decimals and the S of criterion (ii) to 3.

**Validation** (Riley et al. 2021, *Stat Med* 40:4230-51; ``pmvalsampsize``): the expected 95% CI widths of the
C-statistic (Newcombe's variance), the calibration slope (from the information matrix of the calibration model
over the observed linear predictors) and O/E at a given size and prevalence. ``pmvalsampsize`` answers the inverse
question (the n for a target width) by searching; the same formulas are solved here for the width at the n a run
has, and the tests check that the package's n gives our widths at its targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

DEVELOPMENT_METHOD = "Riley et al. 2019/2020 criteria for a binary outcome (closed forms, as pmsampsize)"
#: events (and non-events) below which a calibration claim is too imprecise (Collins et al. 2016; Riley 2021)
MIN_CALIBRATION_EVENTS = 100


@dataclass(frozen=True)
class DevelopmentSize:
    """Riley's criteria for one development set.

    Attributes:
        criteria: ``[(name, n, shrinkage)]`` for (i) shrinkage, (ii) optimism in R2, (iii) overall risk.
        n: the minimum sample size (the largest of the three).
        events: expected events at ``n``.
        epp: events per candidate parameter at ``n``.
        max_r2cs: the largest Cox-Snell R2 the prevalence allows (rounded to 2 decimals).
        parameters, prevalence, r2_cs: the inputs.
    """

    criteria: tuple[tuple[str, int, float], ...]
    n: int
    events: float
    epp: float
    max_r2cs: float
    parameters: int
    prevalence: float
    r2_cs: float
    method: str = DEVELOPMENT_METHOD


def max_r2cs(prevalence: float) -> float:
    """The largest Cox-Snell R2 a binary outcome with this prevalence allows: 1 - (p^p (1-p)^(1-p))^2."""
    p = _prevalence(prevalence)
    return 1.0 - math.exp(2.0 * (p * math.log(p) + (1 - p) * math.log(1 - p)))


def _prevalence(prevalence: float) -> float:
    p = float(prevalence)
    if not 0.0 < p < 1.0:
        raise ValueError(f"prevalence must lie strictly between 0 and 1; got {prevalence!r}")
    return p


def _n_for_shrinkage(parameters: int, r2_cs: float, s: float) -> int:
    return math.ceil(parameters / ((s - 1.0) * math.log(1.0 - r2_cs / s)))


def riley_development(prevalence: float, parameters: int, r2_cs: float, *, shrinkage: float = 0.9,
                      optimism: float = 0.05, margin: float = 0.05, level: float = 0.95) -> DevelopmentSize:
    """Minimum development-set size for a binary-outcome model (Riley et al. 2019, 2020).

    Args:
        prevalence: Anticipated outcome proportion.
        parameters: Candidate predictor parameters (all coefficients that may be estimated).
        r2_cs: Anticipated Cox-Snell R2 (e.g. :func:`anticipated_r2cs` of an anticipated AUC).
        shrinkage: Target expected shrinkage of criterion (i).
        optimism: Largest acceptable optimism in Nagelkerke's R2 (criterion ii).
        margin: Largest acceptable error of the overall risk (criterion iii).
        level: Confidence level of criterion (iii).

    Returns:
        :class:`DevelopmentSize`.

    Raises:
        ValueError: A prevalence outside (0, 1), fewer than one parameter, or an R2_CS that is not positive, is
            above max R2_CS, or is not below the shrinkage (the formula's logarithm would be undefined).

    Example:
        >>> d = riley_development(0.174, 24, 0.288)
        >>> [c[1] for c in d.criteria], d.n, round(d.epp, 2)
        ([623, 668, 221], 668, 4.84)
    """
    p = _prevalence(prevalence)
    if int(parameters) < 1:
        raise ValueError(f"parameters must be a positive number of candidate parameters; got {parameters!r}")
    top = round(max_r2cs(p), 2)
    if not 0.0 < r2_cs <= top or r2_cs >= shrinkage:
        raise ValueError(f"r2_cs must lie in (0, {top}] (max R2_CS at prevalence {p:g}) and below the shrinkage "
                         f"{shrinkage:g}; got {r2_cs!r}")
    s2 = round(r2_cs / (r2_cs + optimism * top), 3)
    z = float(sps.norm.ppf(0.5 + level / 2))
    criteria = (("(i) expected shrinkage >= %g" % shrinkage, _n_for_shrinkage(parameters, r2_cs, shrinkage),
                 shrinkage),
                ("(ii) optimism in Nagelkerke R2 <= %g" % optimism, _n_for_shrinkage(parameters, r2_cs, s2), s2),
                ("(iii) overall risk within +-%g" % margin, math.ceil((z / margin) ** 2 * p * (1 - p)),
                 max(shrinkage, s2)))
    n = max(c[1] for c in criteria)
    return DevelopmentSize(criteria, n, n * p, n * p / int(parameters), top, int(parameters), p, float(r2_cs))


def anticipated_r2cs(auc: float, prevalence: float, *, nodes: int = 4000) -> float:
    """Cox-Snell R2 of a logistic model with this AUC and prevalence (Riley et al. 2021's approximation).

    The linear predictor is binormal with unit variances, N(0, 1) in one class and N(sqrt(2) Phi^-1(AUC), 1) in
    the other (which gives the AUC exactly); a logistic model of the outcome on it is fitted and
    ``R2_CS = 1 - exp(-LR / n)``. ``pmsampsize``'s ``cstat2rsq`` draws a million random values; here each class is
    represented by ``nodes`` normal quantiles, weighted by the prevalence, so the answer is deterministic.
    """
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_linear_model import GLM

    p = _prevalence(prevalence)
    if not 0.5 <= float(auc) < 1.0:
        raise ValueError(f"auc must lie in [0.5, 1); got {auc!r}")
    q = sps.norm.ppf((np.arange(nodes) + 0.5) / nodes)
    mu = math.sqrt(2.0) * float(sps.norm.ppf(auc))
    lp = np.concatenate([q, q + mu])
    y = np.repeat([0.0, 1.0], nodes)
    w = np.repeat([(1 - p) / nodes, p / nodes], nodes) * 1e6  # weights sum to a large n; LR/n does not depend on it
    fit = GLM(y, np.column_stack([np.ones_like(lp), lp]), family=Binomial(), freq_weights=w).fit()
    return 1.0 - math.exp(-(fit.null_deviance - fit.deviance) / w.sum())


@dataclass(frozen=True)
class ValidationPrecision:
    """Expected 95% CI widths at a validation set's size and prevalence (Riley et al. 2021)."""

    n: int
    events: int
    auc: float
    auc_width: float
    slope_width: float
    oe_width: float
    level: float


def validation_precision(n: int, events: int, *, auc: float, lp: Any | None = None, level: float = 0.95,
                         prevalence: float | None = None) -> ValidationPrecision:
    """Expected CI widths of the C-statistic, calibration slope and O/E at this size (pmvalsampsize's formulas).

    Args:
        n: Cases in the validation set.
        events: Cases with the outcome.
        auc: The anticipated (or observed) C-statistic.
        lp: Linear predictors (logit of the predicted risks) of the set, for the slope's information matrix; the
            slope width is NaN without them.
        level: Confidence level.
        prevalence: An anticipated prevalence to use instead of ``events / n`` (planning a study).

    Returns:
        :class:`ValidationPrecision`; NaN widths when a set has no events or no non-events.
    """
    n, events = int(n), int(events)
    z = float(sps.norm.ppf(0.5 + level / 2))
    phi = events / n if prevalence is None else _prevalence(prevalence)
    if n < 2 or not 0 < phi < 1:
        return ValidationPrecision(n, events, auc, math.nan, math.nan, math.nan, level)
    c = float(auc)
    half = n / 2 - 1
    var_c = c * (1 - c) * (1 + half * (1 - c) / (2 - c) + half * c / (1 + c)) / (n * n * phi * (1 - phi))
    se_oe = math.sqrt((1 - phi) / (n * phi))
    oe_width = math.exp(z * se_oe) - math.exp(-z * se_oe)
    slope_width = math.nan
    if lp is not None:
        x = np.asarray(lp, dtype=float)
        w = np.exp(x) / (1 + np.exp(x)) ** 2
        i00, i01, i11 = w.mean(), (x * w).mean(), (x * x * w).mean()
        slope_width = 2 * z * math.sqrt(i00 / (n * (i00 * i11 - i01 * i01)))
    return ValidationPrecision(n, events, c, 2 * z * math.sqrt(var_c), slope_width, oe_width, level)


def precision_warnings(prec: ValidationPrecision, *, auc_width: float = 0.1, slope_width: float = 0.2,
                       min_events: int = MIN_CALIBRATION_EVENTS) -> list[str]:
    """Sentences for the report when a validation set is too small for the claims made on it."""
    out = []
    nonevents = prec.n - prec.events
    if min(prec.events, nonevents) < min_events:
        out.append(f"The set has {prec.events} cases with and {nonevents} without the outcome; calibration claims "
                   f"need at least {min_events} of each (Collins et al. 2016), so its calibration estimates are "
                   "imprecise.")
    if prec.auc_width > auc_width:
        out.append(f"The expected {100 * prec.level:g}% CI of the AUC is {prec.auc_width:.2f} wide (more than "
                   f"{auc_width:g}): differences in AUC smaller than that cannot be shown on this set.")
    if prec.slope_width > slope_width:
        out.append(f"The expected {100 * prec.level:g}% CI of the calibration slope is {prec.slope_width:.2f} wide "
                   f"(more than {slope_width:g}).")
    return out
