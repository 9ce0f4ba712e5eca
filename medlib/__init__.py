"""medlib: a study-in-a-box for clinical imaging AI.

Cohort I/O and patient-level splits, imaging readers, 2D/3D models and training, statistics that match
pROC and dcurves, radiomics and fusion, Grad-CAM, figures, report tables and a CLI. See README.md.
"""

__version__ = "0.1.0"
