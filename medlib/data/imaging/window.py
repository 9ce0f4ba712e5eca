"""The DICOM VOI window (PS3.3 C.11.2.1.2-3): modality values (e.g. HU) to display values in 0..1."""

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


def apply_window(values: np.ndarray, center: float, width: float, *, function: str = "LINEAR") -> np.ndarray:
    """Map values through a window (centre, width) to 0..1, as DICOM PS3.3 C.11.2.1.2 defines it.

    ``LINEAR`` is the classic window (a width of 1 is a threshold, C.11.2.1.2.1); ``LINEAR_EXACT`` and
    ``SIGMOID`` are the two VOI LUT functions of C.11.2.1.3. Output is float32 in [0, 1] (0 = black).

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
    else:
        if width <= 0:
            raise ValueError(f"a {function} window needs a width > 0; got {width:g}")
        if function == "LINEAR_EXACT":
            out = (values - center) / width + 0.5
        else:
            with np.errstate(over="ignore"):  # exp overflows to inf far below the centre: output 0, as it should
                out = 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    return np.clip(out, 0.0, 1.0).astype(np.float32)
