"""Types of the C extension ``shardstream.write._jpegrequant`` (see ``_jpegrequant.c``)."""

def requantize(
    data: bytes | bytearray | memoryview, quality: int, same_tables_only: bool = False
) -> bytes | None: ...
