"""Foreign APIs, each in one home: ``shardstream.compat.<package>`` mirrors that package's module
paths so its users' code runs with only the import prefix changed.

- :mod:`shardstream.compat.datadings`: datadings 3.4.7 (``reader``, ``writer``, ``index``,
  ``tools``, ``torch``, ``sets``, ``commands``).

Each mirrored module re-exports shardstream's engine; only helpers the foreign package documents
and shardstream has no use for are written here, once.
"""
