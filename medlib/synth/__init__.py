"""Synthetic cohorts shaped like the four seed studies, written as the files a hospital would export.

``generate(study, out_dir)`` writes ``out_dir/<study>/``: the images (DICOM radiographs, a CT series per
folder or NIfTI volumes), their lesion masks, ``manifest.csv`` with ``case_id, patient_id, label``, one column
per image input (paths relative to the manifest), the lesion-mask columns, ``set`` (NEC: ``external`` marks the
external test cohort) and clinical covariates, and ``near_duplicates.csv`` (below). Everything is drawn from one
``np.random.Generator`` seeded from ``seed`` and the study's ``STUDY_CODE``, so the same seed gives
byte-identical files.

The outcome is learnable from the images but not trivially: each case gets a latent severity drawn from
``N(d * y, 1)`` (``y`` = 1 for the abnormal class, ``d`` = the design module's ``SEPARATION``), and localised
image findings follow the severity, so classes overlap: NEC: pneumatosis (bowel segments full of intramural gas
bubbles), portal venous gas and free air; ONFH: the necrotic segment of the femoral head (sclerotic rim,
mottled sclerosis, subchondral crescent, collapse); ICH: hematoma volume, irregular margin and heterogeneous
density; glioma: the treated lesion's enhancement in T1ce (thick nodular rim versus "soap-bubble") with the
matching T2 change of its core and edema. ONFH draws an independent severity per view with a larger separation
on the frog-leg view, so AP-only < frog-leg-only < both views. Nuisance variation appears in both classes:
vendors, exposure and MONOCHROME1, position and size, noise and bias fields, and distractors (NEC: tubes,
electrodes, ordinary gas, dilated loops, mottled stool; ONFH: bone islands; glioma: enhancing choroid plexus).
The separations are set so that small CNNs trained for a few CPU epochs at the demo's sizes reach a test AUC
of about 0.85 or more.

Lesion masks (ground truth for where a finding is; ``cohort.lesion_masks`` in the params maps each image column
to its mask column):
    * NEC: column ``lesion_mask``, ``masks/<case_id>.png``; ONFH: ``lesion_mask_ap`` and ``lesion_mask_frog``,
      ``masks/<case_id>_<view>.png``. 8-bit PNG, 255 = lesion, 0 = background, on the radiograph's pixel grid:
      PNG row r, column c is DICOM pixel row r, column c (same Rows x Columns; the DICOM's PixelSpacing
      applies), left hips mirrored with their image.
    * ICH: column ``mask`` (also the radiomics ROI, ``cohort.mask_column``): the hematoma, NIfTI uint8 0/1 on
      the CT's grid (layout below). Glioma: column ``lesion_mask``, ``masks/<case_id>.nii.gz``: the enhancing
      lesion (core and rim), NIfTI uint8 0/1 with the same shape and affine as the three sequences.
    * Every case has a mask file; none is blank. Where the severity drew no finding (NEC: most infants
      without surgery) the mask is all zero. Every NEC infant who needed surgery has at least one pneumatosis
      segment; every hip (ONFH), hematoma (ICH) and treated lesion (glioma) is marked, in both classes, since
      both classes have the disease and differ in how it looks. Read any mask as ``read_image(path).array > 0``.

Near-duplicates planted on purpose (``near_duplicates.csv`` beside the manifest; ``_planted``): four pairs per
cohort (ICH: three, no rescaled copy, see ``_planted.KINDS_CT``), each an original and a copy filed under
another patient with the same label: one exact duplicate
(identical pixel or voxel values, a new header or file) and three near duplicates: rotated (2D: 2.5-5 degrees;
3D: 2-3.5 degrees in the axial plane), rescaled about the centre (2D: by 3-6%; 3D: 2-3.5% in-plane), and
re-exposed (2D: gain and gamma, rendered again by the copy's vendor with new detector noise) or recalibrated
(3D: gain and offset, new noise). Columns: ``case_id_a`` (original), ``case_id_b`` (copy), ``column`` (the
image column copied; ONFH copies both views, glioma all three sequences), ``kind`` (``exact``, ``rotate``,
``scale``, ``exposure``, ``intensity``) and ``transform`` (in words, with its size). The copy's lesion mask is
moved with it. The split decides whether a pair crosses sets; NEC's ``exposure`` copy is in the external cohort,
so that pair always does.

What a reader must handle, on purpose:
    * NEC/ONFH radiographs: 12-bit stored values with RescaleSlope/Intercept and a VOI window; about a quarter
      of NEC images (and the Siemens CR hips) are MONOCHROME1 with inverted pixel values.
    * ICH: about half the patients are a CT series (one file per slice, file names in shuffled order and
      InstanceNumber counting from the top of the head, so only ImagePositionPatient gives the slice order);
      the rest are NIfTI. Masks are NIfTI in the layout a DICOM-to-NIfTI converter (ITK/SimpleITK) writes:
      voxel (i, j, k) = (column, row, slice in ascending patient z), affine = the series geometry in RAS
      (``diag(-dx, -dy, dz)`` for axial slices). NIfTI CT volumes use the same layout and affine.
    * Glioma: three co-registered NIfTI volumes in RAS+ voxel order with arbitrary, per-scan intensity scales.

Every DICOM header carries the fake identifiers in ``PLANTED_IDENTIFIERS`` (PatientID varies per patient
behind a fixed ``PLANTEDID-`` prefix) so de-identification tests can prove they are stripped; the manifest
carries only pseudonymous study codes.

Modules:
    * ``__init__`` (this file): the public face: ``generate``, ``generate_all``, ``STUDIES``,
      ``PLANTED_IDENTIFIERS``, ``planted_identifier_strings``; argument checks and the atomic folder swap.
    * ``nec``, ``onfh``, ``ich``, ``glioma``: one study design each: its images, covariates, ``STUDY_CODE``,
      ``SEPARATION``, manifest ``COLUMNS`` and ``make(ctx, rng)``, which writes the files and returns the table.
    * ``_planted``: the planted near-duplicate pairs, their transformations and ``near_duplicates.csv``.
    * ``_common``: the writer context ``Ctx`` (paths, seed-derived UIDs), covariate draws (counts, labels,
      clipped normals, missing values, dates) and shapes (coordinate grid, ellipses, smooth noise).
    * ``_dicom``: DICOM files and fast series, deterministic NIfTI, PNG masks, radiograph pixels and elements,
      the planted identifiers and SOP class UIDs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from medlib.synth import glioma, ich, nec, onfh
from medlib.synth._common import Ctx
from medlib.synth._dicom import PLANTED_IDENTIFIERS, planted_identifier_strings

__all__ = ["PLANTED_IDENTIFIERS", "STUDIES", "generate", "generate_all", "planted_identifier_strings"]

STUDIES = ("nec", "onfh", "ich", "glioma")
_DESIGNS = dict(zip(STUDIES, (nec, onfh, ich, glioma)))  # study -> its design module


def _check_args(study: str, seed: int, scale: float, image_size: int | None) -> None:
    if study not in _DESIGNS:
        raise KeyError(f"Unknown study {study!r}. Available: {sorted(_DESIGNS)}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0; got {scale!r}")
    if image_size is not None and not 16 <= image_size <= 1024:
        raise ValueError(f"image_size must be between 16 and 1024 pixels; got {image_size!r}")


def _replace_dir(new: Path, target: Path) -> None:
    """Move a finished folder into place; an existing target is swapped out first, then deleted."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    try:
        new.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        shutil.rmtree(old)


def generate(study: str, out_dir: str | Path, *, seed: int = 0, scale: float = 1.0, image_size: int | None = None,
             overwrite: bool = False) -> Path:
    """Write one study's synthetic cohort into ``out_dir/<study>/`` and return its manifest path.

    The cohort is written to a temporary folder beside the target and renamed into place when complete, so an
    interrupted run never leaves a half-written cohort.

    Args:
        study: one of ``STUDIES`` ("nec", "onfh", "ich", "glioma").
        out_dir: parent folder; created if needed.
        seed: the same seed gives byte-identical manifests and image files.
        scale: multiplies the number of patients (at least 10 per class are kept; NEC's external cohort keeps at
            least 5 per class).
        image_size: 2D studies: image side in pixels (default 128); ICH: in-plane size (default 96, 40 slices);
            glioma: cube side (default 32). The field of view stays fixed; the voxel spacing changes.
        overwrite: replace an existing non-empty ``out_dir/<study>`` folder.

    Returns:
        Path of ``out_dir/<study>/manifest.csv``.

    Raises:
        KeyError: unknown study (the message lists the available ones).
        ValueError: a negative seed, non-positive scale or implausible image size.
        FileExistsError: ``out_dir/<study>`` exists and is not empty (or is a file) and ``overwrite`` is False.
    """
    _check_args(study, seed, scale, image_size)
    out_dir, target = Path(out_dir), Path(out_dir) / study
    if target.exists() and not (target.is_dir() and (overwrite or not any(target.iterdir()))):
        raise FileExistsError(f"{target} already exists and is not empty; pass overwrite=True "
                              f"(medlib synth --overwrite) to replace it")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{study}.", suffix=".partial", dir=out_dir))
    try:
        _write_cohort(Ctx(study, int(seed), tmp, float(scale), image_size))
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target / "manifest.csv"


def _write_cohort(ctx: Ctx) -> None:
    """Write images and manifest.csv of ``ctx.study`` into ``ctx.root``."""
    ctx.root.chmod(0o755)
    design = _DESIGNS[ctx.study]
    rng = np.random.default_rng([ctx.seed, design.STUDY_CODE])
    table = design.make(ctx, rng)
    columns = ["case_id", "patient_id", "label", *design.COLUMNS]
    table[columns].to_csv(ctx.root / "manifest.csv", index=False, lineterminator="\n")


def generate_all(out_dir: str | Path, *, seed: int = 0, scale: float = 1.0, overwrite: bool = False
                 ) -> dict[str, Path]:
    """Write all four synthetic cohorts; returns ``{study: manifest path}`` (see ``generate``)."""
    return {study: generate(study, out_dir, seed=seed, scale=scale, overwrite=overwrite) for study in STUDIES}
