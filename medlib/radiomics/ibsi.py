"""IBSI verification of the radiomics: pyradiomics feature names mapped to the IBSI 1 consensus features.

IBSI 1 digital phantom, configuration "A" (:func:`ibsi_phantom_settings`): no resampling, no re-discretisation,
i.e. bin width 1 on the phantom's integer grey levels 1..6; 3D texture matrices averaged over the 13 directions.

``IBSI_PHANTOM_MAP`` maps 102 pyradiomics features to IBSI consensus features; ``tests/test_features.py``
checks every one against ``ibsi1_digital_phantom_reference_values.csv`` (tolerance: the table's own, or half
a unit of the last reported digit, the values being rounded to 3 significant digits) and fails if a feature
listed as matching does not, or if a feature in ``IBSI_KNOWN_DEVIATIONS`` starts to match.

Matching (99): morphology (9) - volume (mesh), volume (voxel counting), surface area (mesh), surface to
volume ratio, sphericity, maximum 3D diameter, major axis length, elongation, flatness; intensity
statistics (14) - mean, variance, skewness, median, minimum, maximum, 10th/90th percentiles, interquartile
range, range, mean and robust mean absolute deviation, energy, root mean square; intensity histogram (2) -
entropy, uniformity (pyradiomics computes them on the discretised grey levels); GLCM "3D, averaged" (23,
every pyradiomics GLCM feature except MCC, which IBSI does not define); GLRLM "3D, averaged" (16, all);
GLSZM "3D" (16, all); NGLDM "3D" (14, pyradiomics' GLDM with alpha 0 is IBSI's NGLDM with a = 0, d = 1);
NGTDM "3D" (5, all).

pyradiomics builds one symmetric GLCM/GLRLM per direction and averages the features over the 13 directions,
which is IBSI's "3D, averaged" aggregation, not "3D, merged" (one matrix summed over directions); the two
differ (GLCM joint entropy 2.40 vs 2.57; GLRLM grey level non-uniformity 21.8 vs 281), so texture values
from a tool that merges are not interchangeable with ours. Not mapped: pyradiomics' 2D maximum diameters,
TotalEnergy and glcm MCC (no IBSI counterpart); IBSI features pyradiomics lacks (e.g. local intensity peaks,
intensity-volume histogram, GLDZM, Moran's I) are out of scope.

Known deviations (3), with the reason:
- ``original_firstorder_Kurtosis``: pyradiomics reports kurtosis m4/m2^2 (2.65), IBSI the excess kurtosis,
  m4/m2^2 - 3 (-0.355). Subtract 3 to compare.
- ``original_shape_MinorAxisLength`` and ``original_shape_LeastAxisLength``: pyradiomics takes the
  eigenvalues of the voxel-coordinate covariance normalised by N, IBSI by N - 1, so its lengths are smaller
  by sqrt((N - 1) / N) (0.9932 for the phantom's 74 voxels): 9.24 vs 9.31 and 8.48 vs 8.54. The major axis
  length carries the same factor (11.33 vs 11.4) but stays inside IBSI's tolerance of 0.1.
"""

from __future__ import annotations

from medlib.config import RadiomicsConfig
from medlib.radiomics.features import FEATURE_CLASSES


def ibsi_phantom_settings() -> RadiomicsConfig:
    """IBSI 1 configuration "A" for the digital phantom: native grid, grey levels used as they are (bin width 1)."""
    return RadiomicsConfig(bin_width=1.0, resample_mm=None, feature_classes=FEATURE_CLASSES)


def _ibsi(family: str, aggregation: str, names: dict[str, str], prefix: str) -> dict[str, tuple[str, str, str]]:
    return {f"original_{prefix}_{py}": (family, ibsi, aggregation) for py, ibsi in names.items()}


_GLRLM = {"ShortRunEmphasis": "Short runs emphasis", "LongRunEmphasis": "Long runs emphasis",
          "LowGrayLevelRunEmphasis": "Low grey level run emphasis",
          "HighGrayLevelRunEmphasis": "High grey level run emphasis",
          "ShortRunLowGrayLevelEmphasis": "Short run low grey level emphasis",
          "ShortRunHighGrayLevelEmphasis": "Short run high grey level emphasis",
          "LongRunLowGrayLevelEmphasis": "Long run low grey level emphasis",
          "LongRunHighGrayLevelEmphasis": "Long run high grey level emphasis",
          "GrayLevelNonUniformity": "Grey level non-uniformity",
          "GrayLevelNonUniformityNormalized": "Normalised grey level non-uniformity",
          "RunLengthNonUniformity": "Run length non-uniformity",
          "RunLengthNonUniformityNormalized": "Normalised run length non-uniformity",
          "RunPercentage": "Run percentage", "GrayLevelVariance": "Grey level variance",
          "RunVariance": "Run length variance", "RunEntropy": "Run entropy"}
_GLSZM = {"SmallAreaEmphasis": "Small zone emphasis", "LargeAreaEmphasis": "Large zone emphasis",
          "LowGrayLevelZoneEmphasis": "Low grey level zone emphasis",
          "HighGrayLevelZoneEmphasis": "High grey level zone emphasis",
          "SmallAreaLowGrayLevelEmphasis": "Small zone low grey level emphasis",
          "SmallAreaHighGrayLevelEmphasis": "Small zone high grey level emphasis",
          "LargeAreaLowGrayLevelEmphasis": "Large zone low grey level emphasis",
          "LargeAreaHighGrayLevelEmphasis": "Large zone high grey level emphasis",
          "GrayLevelNonUniformity": "Grey level non-uniformity",
          "GrayLevelNonUniformityNormalized": "Normalised grey level non-uniformity",
          "SizeZoneNonUniformity": "Zone size non-uniformity",
          "SizeZoneNonUniformityNormalized": "Normalised zone size non-uniformity",
          "ZonePercentage": "Zone percentage", "GrayLevelVariance": "Grey level variance",
          "ZoneVariance": "Zone size variance", "ZoneEntropy": "Zone size entropy"}
_GLDM = {"SmallDependenceEmphasis": "Low dependence emphasis", "LargeDependenceEmphasis": "High dependence emphasis",
         "LowGrayLevelEmphasis": "Low grey level count emphasis",
         "HighGrayLevelEmphasis": "High grey level count emphasis",
         "SmallDependenceLowGrayLevelEmphasis": "Low dependence low grey level emphasis",
         "SmallDependenceHighGrayLevelEmphasis": "Low dependence high grey level emphasis",
         "LargeDependenceLowGrayLevelEmphasis": "High dependence low grey level emphasis",
         "LargeDependenceHighGrayLevelEmphasis": "High dependence high grey level emphasis",
         "GrayLevelNonUniformity": "Grey level non-uniformity",
         "DependenceNonUniformity": "Dependence count non-uniformity",
         "DependenceNonUniformityNormalized": "Normalised dependence count non-uniformity",
         "GrayLevelVariance": "Grey level variance", "DependenceVariance": "Dependence count variance",
         "DependenceEntropy": "Dependence count entropy"}
_GLCM = {"MaximumProbability": "Joint maximum", "JointAverage": "Joint average", "SumSquares": "Joint variance",
         "JointEntropy": "Joint entropy", "DifferenceAverage": "Difference average",
         "DifferenceVariance": "Difference variance", "DifferenceEntropy": "Difference entropy",
         "SumAverage": "Sum average", "SumEntropy": "Sum entropy", "JointEnergy": "Angular second moment",
         "Contrast": "Contrast", "Id": "Inverse difference", "Idn": "Normalised inverse difference",
         "Idm": "Inverse difference moment", "Idmn": "Normalised inverse difference moment",
         "InverseVariance": "Inverse variance", "Correlation": "Correlation", "Autocorrelation": "Autocorrelation",
         "ClusterTendency": "Cluster tendency", "ClusterShade": "Cluster shade",
         "ClusterProminence": "Cluster prominence", "Imc1": "Information correlation 1",
         "Imc2": "Information correlation 2"}
_SHAPE = {"MeshVolume": "Volume (mesh)", "VoxelVolume": "Volume (voxel counting)",
          "SurfaceArea": "Surface area (mesh)", "SurfaceVolumeRatio": "Surface to volume ratio",
          "Sphericity": "Sphericity", "Maximum3DDiameter": "Maximum 3D diameter",
          "MajorAxisLength": "Major axis length", "MinorAxisLength": "Minor axis length",
          "LeastAxisLength": "Least axis length", "Elongation": "Elongation", "Flatness": "Flatness"}
_FIRSTORDER = {"Mean": "Mean intensity", "Variance": "Intensity variance", "Skewness": "Intensity skewness",
               "Kurtosis": "(Excess) intensity kurtosis", "Median": "Median intensity",
               "Minimum": "Minimum intensity", "10Percentile": "10\\ :sup:`th` intensity percentile",
               "90Percentile": "90\\ :sup:`th` intensity percentile", "Maximum": "Maximum intensity",
               "InterquartileRange": "Intensity interquartile range", "Range": "Intensity range",
               "MeanAbsoluteDeviation": "Intensity-based mean absolute deviation",
               "RobustMeanAbsoluteDeviation": "Intensity-based robust mean absolute deviation",
               "Energy": "Intensity-based energy", "RootMeanSquared": "Root mean square intensity"}

#: pyradiomics feature name -> (IBSI family, IBSI feature, IBSI aggregation) in the phantom's consensus table.
IBSI_PHANTOM_MAP: dict[str, tuple[str, str, str]] = {
    **_ibsi("morphology", "", _SHAPE, "shape"),
    **_ibsi("intensity statistics", "", _FIRSTORDER, "firstorder"),
    **_ibsi("intensity histogram", "", {"Entropy": "Discretised intensity entropy",
                                        "Uniformity": "Discretised intensity uniformity"}, "firstorder"),
    **_ibsi("GLCM", "3D, averaged", _GLCM, "glcm"),
    **_ibsi("GLRLM", "3D, averaged", _GLRLM, "glrlm"),
    **_ibsi("GLSZM", "3D", _GLSZM, "glszm"),
    **_ibsi("NGLDM", "3D", _GLDM, "gldm"),
    **_ibsi("NGTDM", "3D", {n: n for n in ("Coarseness", "Contrast", "Busyness", "Complexity", "Strength")},
            "ngtdm"),
}

#: Mapped features that do not reproduce the IBSI consensus value, and why (see the module docstring).
IBSI_KNOWN_DEVIATIONS: dict[str, str] = {
    "original_firstorder_Kurtosis": "pyradiomics reports kurtosis (m4/m2^2); IBSI reports excess kurtosis "
                                    "(m4/m2^2 - 3)",
    "original_shape_MinorAxisLength": "pyradiomics normalises the voxel-coordinate covariance by N, IBSI by N - 1: "
                                      "lengths smaller by sqrt((N-1)/N)",
    "original_shape_LeastAxisLength": "pyradiomics normalises the voxel-coordinate covariance by N, IBSI by N - 1: "
                                      "lengths smaller by sqrt((N-1)/N)",
}
