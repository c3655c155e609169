"""Build the optional C extension; everything else is declared in pyproject.toml.

``shardstream.vision._jpegregion`` decodes only the region of a JPEG a crop needs, against the
system libjpeg-turbo (``libjpeg-turbo8-dev`` / ``libjpeg62-turbo-dev``). It is optional: where the
headers or a compiler are missing the install still succeeds and the decoders fall back to a full
decode (``shardstream.vision.decode``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "shardstream.vision._jpegregion",
            ["shardstream/vision/_jpegregion.c"],
            libraries=["jpeg"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
