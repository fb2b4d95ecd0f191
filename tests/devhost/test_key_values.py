"""Key values as the Functions host's SecretGenerator makes them (identifiable, Marvin-checksummed)."""

from __future__ import annotations

import base64
import re

from devhost.secrets import FUNCTION_KEY_SEED, MASTER_KEY_SEED, SYSTEM_KEY_SEED, generate_key, marvin64

# Microsoft's detection pattern for Azure Functions keys (microsoft/security-utilities).
FUNCTIONS_KEY = re.compile(r"[A-Za-z0-9_\-]{44}AzFu[A-Za-z0-9_\-]{5}[AQgw]==")


def test_marvin_matches_symcrypt_vectors() -> None:
    """SymCrypt's published Marvin32 test cases."""
    assert marvin64(b"abc", 0xD53CD9CECD0893B7) == 0x22C74339492769BF
    assert marvin64(b"abcdefghijklmnopqrstuvwxyz", 0xDDDDEEEEFFFF000) == 0xA128EB7E7260ACA2


def test_generated_keys_are_identifiable_and_checksummed() -> None:
    """Each kind of key has the AzFu signature and a checksum over its first 36 bytes with its seed."""
    for seed in (MASTER_KEY_SEED, SYSTEM_KEY_SEED, FUNCTION_KEY_SEED):
        key = generate_key(seed)
        assert FUNCTIONS_KEY.fullmatch(key), key
        raw = base64.urlsafe_b64decode(key)
        hash64 = marvin64(raw[:36], seed)
        assert raw[36:] == (((hash64 >> 32) ^ hash64) & 0xFFFFFFFF).to_bytes(4, "little")
    assert generate_key() != generate_key()
