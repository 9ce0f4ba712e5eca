"""PNG/JPEG/TIFF radiographs (8 or 16 bit grey).

Colour is converted to grey with Pillow's ``convert("L")``, the ITU-R 601-2 luma rule
L = R * 299/1000 + G * 587/1000 + B * 114/1000 (alpha dropped; palette images through their palette), the same
weights ``read_dicom`` uses for colour DICOM. 16-bit grey keeps its values (0..65535).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medlib.data.imaging.image import Image

#: Largest raster decoded (pixels): a 16k x 16k radiograph. Pillow's own bomb limit warns below it and refuses
#: at twice its MAX_IMAGE_PIXELS with an error that does not name the file.
MAX_PIXELS = 16384 * 16384


def read_png(path: str | Path) -> Image:
    """Read a 2D image as float32 (H, W), spacing (1.0, 1.0) as the file carries none.

    Args:
        path: a PNG, JPEG, TIFF or BMP file.

    Returns:
        An ``Image`` with ``meta`` holding the format, Pillow's mode and the bit depth (8 or 16).

    Raises:
        ValueError: unreadable file, naming it.
    """
    from PIL import Image as PILImage, UnidentifiedImageError

    path = Path(path)
    try:
        with PILImage.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS or min(width, height) < 1:
                raise ValueError(f"{path}: image header gives {width} x {height} pixels; expected 1 to {MAX_PIXELS} "
                                 f"pixels (a decompression bomb?)")
            mode = img.mode
            if mode in ("RGB", "RGBA", "P", "LA", "CMYK"):
                img = img.convert("L")
            array = np.asarray(img)
    except PILImage.DecompressionBombError as err:
        raise ValueError(f"{path}: refused as a decompression bomb ({err})") from None
    except ValueError as err:
        if str(err).startswith(str(path)):
            raise
        raise ValueError(f"{path}: unreadable image file ({type(err).__name__}: {err})") from err
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: unreadable image file ({type(err).__name__}: {err})") from err
    if array.ndim != 2:
        raise ValueError(f"{path}: image has shape {array.shape}; expected a 2D greyscale image")
    bits = 16 if array.dtype in (np.uint16, np.int32, np.int16) else 8
    return Image(array=array.astype(np.float32), spacing=(1.0, 1.0), modality=None, photometric="MONOCHROME2",
                 source=str(path), meta={"format": path.suffix.lstrip(".").upper(), "mode": mode, "bits": bits})
