"""datadings 3.4.7's module paths over shardstream's engine.

Replace ``datadings.`` by ``shardstream.compat.datadings.`` in an import and the code runs on
shardstream: ``reader``, ``writer``, ``index``, ``tools`` (``msgpack``, ``argparse``,
``compression``, ``matlab``, ``cached_property``), ``torch``, ``sets`` (``types``, ``tools`` and
one ``<NAME>`` / ``<NAME>_write`` per datadings-compatible set of :mod:`shardstream.sets`) and
``commands`` (``bench``, ``cat``, ``convert_index``, ``merge``, ``sample``, ``shuffle``,
``split``, ``write``, each with ``main(argv=None)``). No ``datadings-*`` console scripts are
installed (they would clash with datadings' own); run ``shardstream <command>`` or
``python -m shardstream.compat.datadings.commands.<command>``.

Deliberate differences from datadings, everywhere: sample files are never unpickled (object
arrays raise :class:`~shardstream.errors.UnsafeDataError`), and bad input raises a typed error
from :mod:`shardstream.errors` where datadings printed a message and exited.
"""

#: the datadings version whose API these modules mirror
__version__ = "3.4.7"
__version_info__ = __version__.split(".")
