"""datadings' ``sets.YFCC100m_counts``: how many files each YFCC100m image pack holds.

The counts are datadings 3.4.7's own (``data/YFCC100m_counts.json.xz``, shipped here unchanged
under datadings' MIT licence, see ``data/datadings_LICENSE.txt``): one ``[pack name, file count]``
pair per ZIP file of the pre-release image packs, in the order the reader walks them.

Attributes:
    FILE_COUNTS: ``[[name, count], ...]`` for the 9456 packs (names without ``.zip``).
    FILES_TOTAL: the sum of all counts (94,502,424 files).

Loading a damaged data file raises :class:`~shardstream.errors.CorruptMetadataError`.
"""

from __future__ import annotations

import os

from .tools import load_json

__all__ = ["FILE_COUNTS", "FILES_TOTAL", "COUNTS_PATH"]

#: the shipped counts file
COUNTS_PATH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "data", "YFCC100m_counts.json.xz"
)

FILE_COUNTS: list[list] = load_json(COUNTS_PATH)
FILES_TOTAL: int = sum([n for _, n in FILE_COUNTS])
