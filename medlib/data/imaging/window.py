"""Intensity windows: the one place a window (centre, width) is turned into pixel values.

* :func:`apply_window` is the DICOM VOI window (PS3.3 C.11.2.1.2-3) the readers apply: modality values
  (e.g. HU) to display values in 0..1, with the header's VOI LUT function.
* :func:`linear_window` maps ``centre - width/2`` to 0 and ``centre + width/2`` to 1 (DICOM ``LINEAR_EXACT``):
  the viewer's display window and the ICH deep-feature slices use it.
* :func:`clip_window` clips to ``[centre - width/2, centre + width/2]`` in the image's own units (no scaling):
  preprocessing's ``image.window``.
"""

from __future__ import annotations

import numpy as np

VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def check_window(window: object) -> tuple[float, float]:
    """A (centre, width) pair as two floats.

    Raises:
        ValueError: anything but two numbers.
    """
    try:
        center, width = (float(v) for v in window)  # type: ignore[union-attr]
    except (TypeError, ValueError) as err:
        raise ValueError(f"window must be (center, width), two numbers; got {window!r}") from err
    return center, width


def _check_width(width: float) -> float:
    width = float(width)
    if not width > 0:  # also rejects NaN
        raise ValueError(f"window width must be > 0; got {width:g}")
    return width


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear window: ``center - width/2`` maps to 0 (black), ``center + width/2`` to 1 (white), clipped.

    This is DICOM's ``LINEAR_EXACT`` VOI function (PS3.3 C.11.2.1.3.2), computed as
    ``(values - (center - width / 2)) / width``: in float32 for float16/float32 input (as a float32 pipeline
    computes it), in float64 otherwise. It equals MONAI's ``ScaleIntensityRange(center - width/2,
    center + width/2, 0, 1, clip=True)`` on the reference images (tested); NumPy keeps it free of a MONAI import.

    Args:
        values: intensities (any shape), e.g. HU for CT.
        center: window centre (level) in the same units.
        width: window width (> 0) in the same units.

    Returns:
        A new float32 array in [0, 1]; ``values`` is not modified.

    Raises:
        ValueError: a width that is not positive.

    Example:
        >>> linear_window(np.array([0.0, 40.0, 80.0, 200.0]), 40, 80).tolist()
        [0.0, 0.5, 1.0, 1.0]
    """
    width = _check_width(width)
    values = np.asarray(values)
    work = np.float32 if values.dtype in (np.float16, np.float32) else np.float64
    low = float(center) - width / 2
    out = (values.astype(work, copy=False) - work(low)) / work(width)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def clip_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Clip to ``[center - width/2, center + width/2]``, keeping the image's units (no scaling to 0..1).

    Raises:
        ValueError: a width that is not positive.

    Example:
        >>> clip_window(np.array([-1000.0, 40.0, 1000.0]), 40, 80).tolist()
        [0.0, 40.0, 80.0]
    """
    width = _check_width(width)
    return np.clip(values, float(center) - width / 2, float(center) + width / 2)


def apply_window(values: np.ndarray, center: float, width: float, *, function: str = "LINEAR") -> np.ndarray:
    """Map values through a window (centre, width) to 0..1, as DICOM PS3.3 C.11.2.1.2 defines it.

    ``LINEAR`` is the classic window (a width of 1 is a threshold, C.11.2.1.2.1); ``LINEAR_EXACT``
    (:func:`linear_window`) and ``SIGMOID`` are the two VOI LUT functions of C.11.2.1.3. Output is float32 in
    [0, 1] (0 = black).

    Args:
        values: modality values (after rescale slope/intercept).
        center: window centre in the same units.
        width: window width (>= 1 for LINEAR, > 0 otherwise).
        function: ``VOILUTFunction`` of the header: LINEAR, LINEAR_EXACT or SIGMOID.

    Returns:
        A new float32 array; ``values`` is not modified.

    Raises:
        ValueError: unknown function, or a width the function does not allow.

    Example:
        >>> [round(float(v), 3) for v in apply_window(np.array([-1000.0, 40.0, 1000.0]), 40, 400)]
        [0.0, 0.501, 1.0]
    """
    function = (function or "LINEAR").strip().upper()
    if function not in VOI_FUNCTIONS:
        raise ValueError(f"VOI LUT function must be one of {list(VOI_FUNCTIONS)}; got {function!r}")
    center, width = float(center), float(width)
    values = np.asarray(values, dtype=np.float64)
    if function == "LINEAR":
        if width < 1:
            raise ValueError(f"a LINEAR window needs a width >= 1; got {width:g}")
        if width == 1:  # a threshold; the linear formula would divide by zero
            return (values > center - 0.5).astype(np.float32)
        out = (values - (center - 0.5)) / (width - 1) + 0.5
        return np.clip(out, 0.0, 1.0).astype(np.float32)
    if width <= 0:
        raise ValueError(f"a {function} window needs a width > 0; got {width:g}")
    if function == "LINEAR_EXACT":
        return linear_window(values, center, width)
    with np.errstate(over="ignore"):  # exp overflows to inf far below the centre: output 0, as it should
        out = 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    return np.clip(out, 0.0, 1.0).astype(np.float32)
