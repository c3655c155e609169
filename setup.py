"""Build the optional C extensions; everything else is declared in pyproject.toml.

``shardstream.vision._jpegregion`` decodes only the region of a JPEG a crop needs, against the
system libjpeg-turbo (``libjpeg-turbo8-dev`` / ``libjpeg62-turbo-dev``). It is optional: where the
headers or a compiler are missing the install still succeeds and the decoders fall back to a full
decode (``shardstream.vision.decode``).

``shardstream.write._jpegrequant`` re-encodes a JPEG at another quality in the DCT domain (for
``shardstream write --quality``), against the same libjpeg-turbo; without it the conversion
decodes and encodes the pixels (``shardstream.write.transcode``).

``shardstream.vision._resample`` resizes crops bit-identically to Pillow's antialiased bicubic
filter (AVX2 where the CPU has it); without it ``shardstream.vision.resize`` falls back to torch's
kernel, within a level of Pillow.

``shardstream.vision._masking`` draws iBOT masks as ``shardstream.vision.masking.sample_masks``
does, the same draws in C; without it the Python loop runs.

``shardstream.write._md5lanes`` hashes several buffers at once, eight md5 streams in the lanes
of AVX2 registers (chosen at run time; scalar C without AVX2); without it
``shardstream.write.md5lanes`` falls back to hashlib.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "shardstream.vision._jpegregion",
            ["shardstream/vision/_jpegregion.c"],
            libraries=["jpeg"],
            include_dirs=["shardstream/_native"],
            depends=["shardstream/_native/jpeg_error.h"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "shardstream.write._jpegrequant",
            ["shardstream/write/_jpegrequant.c"],
            libraries=["jpeg"],
            include_dirs=["shardstream/_native"],
            depends=["shardstream/_native/jpeg_error.h"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
        Extension(
            "shardstream.vision._resample",
            ["shardstream/vision/_resample.c"],
            optional=True,
            # no fused multiply-add: the weights must round exactly as Pillow's do
            extra_compile_args=["-O3", "-ffp-contract=off"],
        ),
        Extension(
            "shardstream.vision._masking",
            ["shardstream/vision/_masking.c"],
            optional=True,
            # no fused multiply-add: every product and sum must round as Python's do
            extra_compile_args=["-O2", "-ffp-contract=off"],
        ),
        Extension(
            "shardstream.write._md5lanes",
            ["shardstream/write/_md5lanes.c"],
            optional=True,
            # the AVX2 kernel has its own target attribute: no -mavx2 for the module
            extra_compile_args=["-O3"],
        ),
    ]
)
