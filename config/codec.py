"""Payload encryption (SPEC §7): AES-256-GCM with key ids, the first key encrypts and every key decrypts."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

KEYS_ENV = "PLAYBOOK_ENCRYPTION_KEYS"
KEYS_FILE_ENV = "PLAYBOOK_ENCRYPTION_KEYS_FILE"
ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class KeysInvalid(ValueError):
    """Keys that cannot be used; the message names the setting and the rule."""


def parse_keys(text: str, *, source: str = KEYS_ENV) -> list[tuple[str, bytes]]:
    """``key_id:base64(32 bytes)``, comma-separated (new lines too, for a keys file)."""
    keys: list[tuple[str, bytes]] = []
    for entry in text.replace("\n", ",").split(","):
        if not entry.strip():
            continue
        key_id, sep, encoded = entry.strip().partition(":")
        if not sep or not key_id:
            shown = key_id or entry.strip()
            raise KeysInvalid(f"{source}: {shown!r} is not key_id:base64 (e.g. k1:<32 bytes, base64>)")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise KeysInvalid(f"{source}: key {key_id!r} is not valid base64") from None
        if len(key) != 32:
            raise KeysInvalid(f"{source}: key {key_id!r} is {len(key)} bytes; AES-256 needs 32")
        if any(key_id == known for known, _ in keys):
            raise KeysInvalid(f"{source}: key id {key_id!r} appears twice")
        keys.append((key_id, key))
    return keys


def keys_from_env(env: Mapping[str, str] = os.environ) -> list[tuple[str, bytes]]:
    """The configured keys (none: no encryption); the file setting is read when the inline one is unset."""
    if text := env.get(KEYS_ENV, "").strip():
        return parse_keys(text)
    if path := env.get(KEYS_FILE_ENV, "").strip():
        try:
            return parse_keys(Path(path).read_text(), source=f"{KEYS_FILE_ENV} ({path})")
        except OSError as exc:
            raise KeysInvalid(f"{KEYS_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
    return []


def new_key_line(key_id: str) -> str:
    """A fresh ``key_id:base64`` entry (what `playbook dev` writes under its state folder)."""
    return f"{key_id}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


class EncryptionCodec(PayloadCodec):
    """Encrypts whole payloads (metadata and data), so the encoding of the value is hidden too."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeysInvalid(f"{KEYS_ENV}: at least one key is needed")
        self._encrypt_id, key = keys[0]
        self._encrypt = AESGCM(key)
        self._decrypt = {key_id: AESGCM(k) for key_id, k in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = self._encrypt.encrypt(nonce, payload.SerializeToString(), self._encrypt_id.encode())
            metadata = {"encoding": ENCODING, KEY_ID: self._encrypt_id.encode()}
            encoded.append(Payload(metadata=metadata, data=nonce + sealed))
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)  # written before encryption was on: readable as it is
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode()
            cipher = self._decrypt.get(key_id)
            if cipher is None:
                raise ValueError(f"payload encrypted with key {key_id!r}, which is not in {KEYS_ENV}")
            try:
                plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode())
            except InvalidTag:
                raise ValueError(f"payload does not decrypt with key {key_id!r} (tampered, or another key)") from None
            decoded.append(Payload.FromString(plain))
        return decoded
