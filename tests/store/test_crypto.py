from __future__ import annotations

import pytest

from store.crypto import CredentialCipher, CredentialError, decode_key, generate_key


def test_round_trip_and_binding_to_workspace_and_kind():
    cipher = CredentialCipher.from_keys([generate_key()])
    blob = cipher.encrypt({"private_key": "s3cret"}, workspace_id=1, kind="connectwise")
    assert b"s3cret" not in blob
    assert cipher.decrypt(blob, workspace_id=1, kind="connectwise") == {"private_key": "s3cret"}
    with pytest.raises(CredentialError, match="do not belong"):
        cipher.decrypt(blob, workspace_id=2, kind="connectwise")
    with pytest.raises(CredentialError, match="do not belong"):
        cipher.decrypt(blob, workspace_id=1, kind="autotask")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(CredentialError):
        cipher.decrypt(tampered, workspace_id=1, kind="connectwise")


def test_rotation_keeps_old_ciphertexts_readable():
    old, new = generate_key(), generate_key()
    blob = CredentialCipher.from_keys([old]).encrypt({"k": "v"}, workspace_id=3, kind="sandbox")
    rotated_cipher = CredentialCipher.from_keys([new, old])
    assert rotated_cipher.needs_rotation(blob)
    assert rotated_cipher.decrypt(blob, workspace_id=3, kind="sandbox") == {"k": "v"}
    fresh = rotated_cipher.rotate(blob, workspace_id=3, kind="sandbox")
    assert not rotated_cipher.needs_rotation(fresh)
    with pytest.raises(CredentialError, match="key this instance does not have"):
        CredentialCipher.from_keys([new]).decrypt(blob, workspace_id=3, kind="sandbox")


@pytest.mark.parametrize("bad", ["", "not base64!!", "c2hvcnQ="])
def test_bad_keys_are_refused_with_a_fix(bad: str):
    with pytest.raises(ValueError, match="deskbridge secret-key"):
        decode_key(bad)
