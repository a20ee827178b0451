"""``pad_to_multiple`` lives in ``derain_zoo.padding``, below ``inference``; this name is handed on for the networks."""

from derain_zoo.padding import pad_to_multiple

__all__ = ["pad_to_multiple"]
