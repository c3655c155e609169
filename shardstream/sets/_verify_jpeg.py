"""datadings' image check for ImageNet data (``verify_image``), reproduced byte for byte.

A JPEG that decodes and needs no re-encoding is kept as it is. A CMYK JPEG, an image that is not
a readable JPEG (a PNG, a damaged file Pillow still reads), or, with ``quality``, a large JPEG is
re-encoded as an RGB JPEG (simplejpeg): at ``quality`` (98 when not given), subsampling
``colorsubsampling`` only for large compressed images (else 4:4:4), downscaled with Lanczos so
its longer side is ``long_side`` when it has more than 1.5 times ``3 * short_side * long_side``
values. Gzip-compressed images (found in ImageNet21k) are unpacked first.
"""

from __future__ import annotations

import argparse
import gzip
import io
import zlib

import numpy as np

from ..errors import BadSourceError

__all__ = ["add_compress_arguments", "verify_image"]


def add_compress_arguments(parser: argparse.ArgumentParser) -> None:
    """Add datadings' ``--compress [QUALITY]`` and ``--subsampling`` options of the ImageNet
    writers (ILSVRC2012, ImageNet21k), which :func:`verify_image` applies.

    Args:
        parser: the set's parser.
    """
    parser.add_argument(
        "--compress",
        nargs="?",
        default=None,
        const=85,
        choices=range(101),
        metavar="quality 0-100",
        type=int,
        help="re-encode large images as JPEG at this quality (85 when given without one), "
        "downscaled to about 500 x 375 when much bigger",
    )
    parser.add_argument(
        "--subsampling",
        default="422",
        choices=("444", "422", "420", "440", "411", "Gray"),
        help="colour subsampling with --compress (small images keep 444)",
    )


def verify_image(
    data: bytes,
    source: str,
    *,
    quality: int | None = None,
    short_side: int = 375,
    long_side: int = 500,
    colorsubsampling: str = "422",
) -> bytes:
    """The image bytes to store for ``data``, as datadings' ``verify_image`` gives them.

    Args:
        data: the source image's bytes.
        source: where they come from (for errors).
        quality: re-encode large JPEGs at this quality (datadings' ``--compress``).
        short_side, long_side: the target size (500 x 375).
        colorsubsampling: subsampling of large re-encoded images (``--subsampling``).

    Raises:
        BadSourceError: neither simplejpeg nor Pillow can read the data (datadings leaves such
            images out, printing a line; ``--on-error skip`` does the same).
    """
    from PIL import Image, UnidentifiedImageError
    from simplejpeg import decode_jpeg, decode_jpeg_header, encode_jpeg

    target = 3 * short_side * long_side
    if quality is None:
        # Without --compress only a CMYK or unreadable image is re-encoded, so the decoded pixels
        # of any other JPEG go unused: decoding at the smallest DCT scale runs the same header
        # and entropy decoding (where a damaged file fails) at ~0.7x the cost.
        try:
            _, _, colorspace, _ = decode_jpeg_header(data)
            if colorspace != "CMYK":
                decode_jpeg(data, min_width=1, min_height=1)
                return data
        except ValueError:
            pass  # the full path below decides, as datadings does
    try:
        height, width, colorspace, _ = decode_jpeg_header(data)
        image = decode_jpeg(
            data,
            min_width=short_side if width < height else long_side,
            min_height=short_side if height < width else long_side,
        )
        compress = quality is not None and image.size > 0.5 * target
    except ValueError:
        try:
            image = np.array(Image.open(io.BytesIO(data)).convert("RGB"))
            colorspace, compress = "RGB", True
        except UnidentifiedImageError:
            if data[:2] == b"\x1f\x8b":
                try:
                    unpacked = gzip.decompress(data)
                except (OSError, EOFError, zlib.error) as e:
                    raise BadSourceError(source, f"cannot decode the gzip'd image: {e}") from None
                return verify_image(
                    unpacked,
                    source,
                    quality=quality,
                    short_side=short_side,
                    long_side=long_side,
                    colorsubsampling=colorsubsampling,
                )
            raise BadSourceError(source, "not an image simplejpeg or Pillow can read") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            # a damaged file Pillow starts to read and then fails on (datadings crashes here)
            raise BadSourceError(source, f"damaged image: {e}") from None
    if colorspace != "CMYK" and not compress:
        return data
    if quality is None:
        quality = 98
    if not compress or image.size <= 0.5 * target:
        colorsubsampling = "444"  # small images and forced re-encodes keep full colour
    if image.size > target * 1.5:
        height, width = image.shape[:2]
        scale = long_side / max(height, width)
        size = (int(round(scale * width)), int(round(scale * height)))
        image = np.array(
            Image.fromarray(image, "RGB").resize(size, resample=Image.Resampling.LANCZOS)
        )
    return encode_jpeg(image, quality=quality, colorsubsampling=colorsubsampling)
