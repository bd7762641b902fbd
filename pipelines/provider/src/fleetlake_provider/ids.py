"""Deterministic UUIDs: the same seed always names the same vehicles, trips and events."""

import hashlib

import numpy as np


def _format(hex32: str) -> str:
    variant = "89ab"[int(hex32[16], 16) & 3]
    return f"{hex32[:8]}-{hex32[8:12]}-4{hex32[13:16]}-{variant}{hex32[17:20]}-{hex32[20:32]}"


def uuid_from(*parts: object) -> str:
    """A version-4-shaped UUID derived from `parts`."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).hexdigest()
    return _format(digest)


def seed_from(*parts: object) -> int:
    """A 63-bit random seed derived from `parts`, stable across processes (unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()) >> 1


def uuid_batch(count: int, *parts: object) -> list[str]:
    """`count` distinct UUIDs derived from `parts`, generated in one pass."""
    raw = np.random.default_rng(seed_from(*parts)).bytes(16 * count).hex()
    return [_format(raw[i : i + 32]) for i in range(0, 32 * count, 32)]
