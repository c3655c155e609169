"""Foreign APIs, each in one home: ``shardstream.compat.<package>`` mirrors that package's module
paths so its users' code runs with only the import prefix changed.

- :mod:`shardstream.compat.datadings`: datadings 3.4.7 (``reader``, ``writer``, ``index``,
  ``tools``, ``torch``, ``sets``, ``commands``).
- :mod:`shardstream.compat.dinov2`: dinov2's ``dinov2.data`` (``loaders``, ``samplers``,
  ``datasets``, ``transforms``).
- :mod:`shardstream.compat.helios`: helios' ``helios.data`` (registries, ``create_dataloader``,
  ``DataModule``, its resumable samplers and transforms).

The wings are independent of each other (checked by import-linter); what two of them share lives
below them (``order``, ``engine``, ``vision``, ``loader``).

Each mirrored module re-exports shardstream's engine; only helpers the foreign package documents
and shardstream has no use for are written here, once.
"""
