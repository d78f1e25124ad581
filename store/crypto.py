"""Credentials at rest: AES-256-GCM with associated data that binds a ciphertext to its workspace.

A ciphertext copied into another workspace's row (or another connection kind) fails to decrypt, which
Fernet alone would not notice (reliability-sla.md §6.3). Keys come from settings, never from the
database; each ciphertext starts with its key id so keys can be rotated (`rotate`).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"v1"


class CredentialError(Exception):
    """Credentials could not be decrypted (wrong key, or moved from another workspace)."""


def generate_key() -> str:
    """A new random key, encoded for the DESKBRIDGE_SECRET_KEY setting."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def decode_key(text: str) -> bytes:
    """Decode a urlsafe-base64 32-byte key; raises ValueError with a fix-it message."""
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("secret key is not valid base64; generate one with `deskbridge secret-key`") from exc
    if len(raw) != 32:
        raise ValueError("secret key must decode to 32 bytes; generate one with `deskbridge secret-key`")
    return raw


@dataclass(frozen=True)
class CredentialCipher:
    """Encrypts credential dicts for one (workspace, kind) pair; the first key encrypts, all decrypt."""

    keys: dict[str, bytes]
    primary_key_id: str

    @classmethod
    def from_keys(cls, keys: list[str]) -> CredentialCipher:
        """Build from encoded keys, newest first; key ids are derived (k0 newest) from their bytes."""
        if not keys:
            raise ValueError("at least one secret key is required")
        decoded = [decode_key(k) for k in keys]
        ids = [_key_id(k) for k in decoded]
        return cls(keys=dict(zip(ids, decoded, strict=True)), primary_key_id=ids[0])

    def encrypt(self, credentials: dict[str, Any], *, workspace_id: int, kind: str) -> bytes:
        nonce = os.urandom(12)
        kid = self.primary_key_id
        aad = _aad(workspace_id, kind, kid)
        plaintext = json.dumps(credentials, sort_keys=True).encode()
        ct = AESGCM(self.keys[kid]).encrypt(nonce, plaintext, aad)
        return _VERSION + b"." + kid.encode() + b"." + nonce + ct

    def decrypt(self, blob: bytes, *, workspace_id: int, kind: str) -> dict[str, Any]:
        try:
            version, kid_b, rest = blob.split(b".", 2)
        except ValueError as exc:
            raise CredentialError("stored credentials are malformed; re-enter them") from exc
        kid = kid_b.decode(errors="replace")
        if version != _VERSION or kid not in self.keys:
            raise CredentialError(
                "stored credentials were encrypted with a key this instance does not have; "
                "add the old key to DESKBRIDGE_SECRET_KEYS_OLD or re-enter the credentials"
            )
        nonce, ct = rest[:12], rest[12:]
        try:
            plaintext = AESGCM(self.keys[kid]).decrypt(nonce, ct, _aad(workspace_id, kind, kid))
        except InvalidTag as exc:
            raise CredentialError(
                "stored credentials do not belong to this workspace/connection (or were altered); re-enter them"
            ) from exc
        data: dict[str, Any] = json.loads(plaintext)
        return data

    def needs_rotation(self, blob: bytes) -> bool:
        return not blob.startswith(_VERSION + b"." + self.primary_key_id.encode() + b".")

    def rotate(self, blob: bytes, *, workspace_id: int, kind: str) -> bytes:
        """Re-encrypt under the primary key."""
        return self.encrypt(self.decrypt(blob, workspace_id=workspace_id, kind=kind), workspace_id=workspace_id,
                            kind=kind)


def _key_id(key: bytes) -> str:
    import hashlib

    return hashlib.sha256(b"deskbridge-key-id" + key).hexdigest()[:8]


def _aad(workspace_id: int, kind: str, kid: str) -> bytes:
    return f"deskbridge:psa-credentials:{workspace_id}:{kind}:{kid}".encode()
