"""CompressedToPIL: encoded image bytes to an RGB PIL image, as datadings' transform does.

simplejpeg (libjpeg-turbo) decodes JPEGs when it is installed; anything it rejects with a
``ValueError`` (PNG, CMYK JPEGs, ...) and everything when it is missing goes through Pillow.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

try:
    from simplejpeg import decode_jpeg as _decode_jpeg
except ImportError:  # optional accelerator
    _decode_jpeg = None

__all__ = ["CompressedToPIL"]


class CompressedToPIL:
    """A transform from compressed image bytes to an RGB ``PIL.Image.Image``.

    Takes ``bytes``, ``bytearray`` or a ``memoryview`` (e.g. a sample read with ``copy=False``).
    """

    def __call__(self, buf: Any) -> Image.Image:
        """Decode ``buf``.

        Args:
            buf: the encoded image (any format Pillow reads; JPEG is fastest).

        Returns:
            The image in RGB mode.

        Raises:
            PIL.UnidentifiedImageError: Pillow cannot read the bytes either.
        """
        if _decode_jpeg is not None:
            try:
                return Image.fromarray(_decode_jpeg(buf, colorspace="RGB"))
            except ValueError:
                pass
        return Image.open(io.BytesIO(buf)).convert("RGB")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
