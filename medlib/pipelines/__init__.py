"""One pipeline per study design: a validated config in, the run record out.

- ``prepare``: the steps every design shares (params, cohort, patient-level split, Table 1, example images).
- ``classifier``: CNNs on the images of each case (one image, several views or a 3D volume), Grad-CAM.
- ``features``: radiomics (whole ROI and habitats) and deep features, LASSO + SVM fusion.
- ``design``: ``fit_models``, the dispatch on ``design`` (classifier or features).
- ``record``: thresholds frozen on validation, ``metrics.json``, the report's sections, the run summary.
- ``torchrun``: the multi-GPU entry point; it wraps the training loop and is never imported by it.

A notebook calls the steps in order and shows what each returns; ``medlib.run`` runs a whole study from a
params file through its design's notebook.
"""

from medlib.pipelines import classifier, features, prepare, record
from medlib.pipelines.classifier import device_name
from medlib.pipelines.design import fit_models
from medlib.pipelines.prepare import Prepared, load_study

#: The notebook template every design's report is executed from (``notebooks/study.ipynb``).
NOTEBOOK = "study.ipynb"

__all__ = ["NOTEBOOK", "Prepared", "classifier", "device_name", "features", "fit_models", "load_study", "prepare",
           "record"]
