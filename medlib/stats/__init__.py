"""Statistics for imaging AI studies: ROC/AUC with DeLong and bootstrap CIs and tests (matching pROC),
confusion metrics with Wilson CIs and frozen thresholds, calibration, decision curves (matching dcurves) and
Table 1. Reads plain arrays or the long predictions table; never imports torch, never draws.

Clustered data (several rows per patient) get patient-level intervals everywhere (Obuchowski's clustered AUC
variance, bootstraps that resample patients); thresholds carry their uncertainty (:mod:`~medlib.stats.operating`);
recalibration is fitted on validation and frozen (:mod:`~medlib.stats.recalibration`).

Library code is used wherever it gives the same answer (each is tested against what the hand-written code
gave): scikit-learn for ROC points, statsmodels for Wilson intervals, multiple-testing adjustment and the
calibration GLMs, SciPy for the Table 1 tests. DeLong (no Python library has it), the vectorised bootstrap,
net benefit (dcurves' definition) and the Table 1 rules are ours; each module says why.
"""

from medlib.stats._validate import MIN_CASES, UndefinedMetricWarning, check_binary_scores, not_estimable
from medlib.stats.bootstrap import bootstrap_auc, resample_weights
from medlib.stats.calibration import Calibration, calibration, reliability_curve
from medlib.stats.compare import compare_models
from medlib.stats.dca import decision_curve, net_benefit, net_benefit_band, treat_all_net_benefit
from medlib.stats.delong import (auc, delong_cov, delong_test, delong_unpaired_test, delong_var, logit_ci,
                                 obuchowski_var)
from medlib.stats.metrics import (
    BinaryMetrics,
    Threshold,
    binary_metrics,
    choose_threshold,
    metrics_table,
    wilson_ci,
)
from medlib.stats.multitest import adjust_pvalues
from medlib.stats.operating import (MIN_EVENTS, ThresholdUncertainty, operating_metrics, threshold_uncertainty,
                                    threshold_warning)
from medlib.stats.recalibration import (ISOTONIC_RULE, Recalibrator, calibration_measures, fit_recalibration,
                                        loess_band)
from medlib.stats.results import Estimate, PairedTest
from medlib.stats.roc import auc_ci, has_clusters, roc_curve
from medlib.stats.table1 import table1, table1_tests

__all__ = [
    "ISOTONIC_RULE",
    "MIN_CASES",
    "MIN_EVENTS",
    "Recalibrator",
    "ThresholdUncertainty",
    "calibration_measures",
    "fit_recalibration",
    "has_clusters",
    "logit_ci",
    "loess_band",
    "net_benefit_band",
    "not_estimable",
    "obuchowski_var",
    "operating_metrics",
    "resample_weights",
    "threshold_uncertainty",
    "threshold_warning",
    "treat_all_net_benefit",
    "BinaryMetrics",
    "Calibration",
    "Estimate",
    "PairedTest",
    "Threshold",
    "UndefinedMetricWarning",
    "adjust_pvalues",
    "auc",
    "auc_ci",
    "binary_metrics",
    "bootstrap_auc",
    "calibration",
    "check_binary_scores",
    "choose_threshold",
    "compare_models",
    "decision_curve",
    "delong_cov",
    "delong_test",
    "delong_unpaired_test",
    "delong_var",
    "metrics_table",
    "net_benefit",
    "reliability_curve",
    "roc_curve",
    "table1",
    "table1_tests",
    "wilson_ci",
]
