"""datadings' ``writer``: :class:`FileWriter` (sample dicts), :class:`RawWriter` (packed bytes)
and their base :class:`Writer`, shardstream's writers (:mod:`shardstream.write`)."""

from ...write import FileWriter, RawWriter, Writer

__all__ = ["FileWriter", "RawWriter", "Writer"]
