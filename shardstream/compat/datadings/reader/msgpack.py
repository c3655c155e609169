"""datadings' ``reader.msgpack``: :class:`MsgpackReader` for one packed file."""

from ....read import MsgpackReader

__all__ = ["MsgpackReader"]
