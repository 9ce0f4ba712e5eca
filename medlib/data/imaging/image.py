"""The ``Image`` every reader returns: pixels, geometry and non-identifying technical metadata only."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Image:
    """An image or volume as the rest of medlib sees it.

    Attributes:
        array: float32 pixels; 2D images are (H, W), volumes (D, H, W) with D the slice axis.
        spacing: pixel spacing in mm, in the same axis order as ``array``.
        modality: DICOM modality (``"CT"``, ``"MR"``, ``"DX"`` ...) or None.
        photometric: photometric interpretation of the source (after inversion, high is always bright).
        source: the file or folder it was read from.
        meta: technical tags only (an allow-list; never names, IDs, dates, UIDs or institutions).
        affine: 4 x 4 map from the array index (d, h, w, 1) to patient LPS coordinates in mm for volumes whose
            file places them in the patient (DICOM series, NIfTI); None otherwise (``imaging.geometry``).
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    modality: str | None = None
    photometric: str | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)
    affine: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        return (f"Image(shape={self.array.shape}, spacing={tuple(round(s, 4) for s in self.spacing)}, "
                f"modality={self.modality!r}, source={self.source!r})")
