"""Loading still photos for enrolment and ``kgate face identify``, refusing bad files before decoding.

The pixel count is read from the header and checked before any pixel is decoded, so a small file
claiming a 50 000 x 50 000 picture (a decompression bomb) costs nothing. Truncated or non-image files
raise :class:`BadImage` with one line naming the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from terminal.face.errors import BadImage

#: Largest photo decoded: 40 megapixels (phone cameras are 12-50 MP; larger is refused, not shrunk).
MAX_PIXELS = 40_000_000
#: Largest file read at all.
MAX_BYTES = 64 * 1024 * 1024

RGB = npt.NDArray[np.uint8]


def load_rgb(path: Path | str, max_pixels: int = MAX_PIXELS) -> RGB:
    """The photo at ``path`` as an ``(h, w, 3)`` RGB array, upright per its EXIF orientation."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BadImage(f"{path}: cannot read: {exc.strerror}") from None
    if size > MAX_BYTES:
        raise BadImage(f"{path}: file of {size} bytes is larger than {MAX_BYTES}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:  # reads the header only
                width, height = im.size
                if width * height > max_pixels:
                    raise BadImage(f"{path}: {width}x{height} pixels is more than {max_pixels} allowed")
                im.load()
                upright = ImageOps.exif_transpose(im)
                rgb = upright.convert("RGB")
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(
            f"{path}: the header claims more than {max_pixels} pixels; refused before decoding"
        ) from None
    except UnidentifiedImageError:
        raise BadImage(f"{path}: not an image") from None
    except (
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise BadImage(f"{path}: unreadable image: {exc}") from None
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
