"""QStash-shaped ids: a prefix and 28 base58 characters."""

from __future__ import annotations

import random

__all__ = ["BASE58", "ID_LENGTH", "new_ids"]

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
ID_LENGTH = 28


def new_ids(prefix: str, count: int, rng: random.Random, taken: set[str]) -> list[str]:
    """``count`` fresh ids, none in ``taken``; they are added to it."""
    if count == 1:  # every publish draws two: the short way
        value = prefix + "_" + rng.randbytes(ID_LENGTH).translate(_BYTE_TO_BASE58).decode("ascii")
        if value not in taken:
            taken.add(value)
            return [value]
    # One draw of random bytes for the whole batch, mapped to base58: far cheaper
    # than drawing character by character (docs/benchmarks.md). byte % 58 favours
    # the first 24 characters slightly; ids only need their shape and uniqueness.
    chars = rng.randbytes(ID_LENGTH * count).translate(_BYTE_TO_BASE58).decode("ascii")
    head = prefix + "_"
    ids = [head + chars[i : i + ID_LENGTH] for i in range(0, len(chars), ID_LENGTH)]
    for index, value in enumerate(ids):
        while value in taken:  # 160-odd random bits: in practice never taken
            value = head + rng.randbytes(ID_LENGTH).translate(_BYTE_TO_BASE58).decode("ascii")
        ids[index] = value
        taken.add(value)
    return ids


_BYTE_TO_BASE58 = bytes(ord(BASE58[b % len(BASE58)]) for b in range(256))
