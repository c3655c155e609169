"""datadings' ``reader.augment``: readers that change the order or length of another reader."""

from ....order import Augment, Cycler, QuasiShuffler, Range, Repeater, Shuffler

__all__ = ["Augment", "Cycler", "QuasiShuffler", "Range", "Repeater", "Shuffler"]
