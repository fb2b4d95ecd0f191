"""Key values as the host's ``SecretGenerator`` makes them: identifiable (``AzFu``) and Marvin-checksummed."""

from __future__ import annotations

import base64
import secrets

# SecretGenerator's Marvin seeds, one per kind of key, and the signature every Functions key carries.
MASTER_KEY_SEED = 0x4D61737465723030
SYSTEM_KEY_SEED = 0x53797374656D3030
FUNCTION_KEY_SEED = 0x46756E6374693030
KEY_SIGNATURE = "AzFu"
_MASK32 = 0xFFFFFFFF


def _rotl(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (32 - shift))) & _MASK32


def _marvin_block(p0: int, p1: int) -> tuple[int, int]:
    p1 ^= p0
    p0 = _rotl(p0, 20)
    p0 = (p0 + p1) & _MASK32
    p1 = _rotl(p1, 9)
    p1 ^= p0
    p0 = _rotl(p0, 27)
    p0 = (p0 + p1) & _MASK32
    p1 = _rotl(p1, 19)
    return p0, p1


def marvin64(data: bytes, seed: int) -> int:
    """The Marvin32 hash (SymCrypt's) of ``data`` as its 64-bit value ``p1 << 32 | p0``."""
    p0, p1 = seed & _MASK32, (seed >> 32) & _MASK32
    whole = len(data) - len(data) % 4
    for offset in range(0, whole, 4):
        p0, p1 = _marvin_block((p0 + int.from_bytes(data[offset:offset + 4], "little")) & _MASK32, p1)
    tail = data[whole:]
    final = int.from_bytes(tail, "little") | (0x80 << (8 * len(tail)))
    p0, p1 = _marvin_block((p0 + final) & _MASK32, p1)
    p0, p1 = _marvin_block(p0, p1)
    return (p1 << 32) | p0


def generate_key(seed: int = FUNCTION_KEY_SEED) -> str:
    """A new identifiable key, as ``SecretGenerator`` makes them: 40 random bytes whose bytes 32-35 spell
    the ``AzFu`` signature and whose last 4 are a Marvin checksum of the rest, in URL-safe base64 with
    padding (56 characters, ``…AzFu??????==``)."""
    key = bytearray(secrets.token_bytes(40))
    signature = base64.b64decode(KEY_SIGNATURE)
    # (40 - 7) bytes of random data fill whole base64 characters, so no bits need shifting.
    key[32:36] = bytes([key[32], *signature])
    hash64 = marvin64(bytes(key[:36]), seed)
    checksum = ((hash64 >> 32) ^ hash64) & _MASK32
    key[36:40] = checksum.to_bytes(4, "little")
    return base64.urlsafe_b64encode(bytes(key)).decode()
