"""Fixtures for the surfaces: the environment a CLI command runs in."""

from __future__ import annotations

import pytest

from store.crypto import generate_key


@pytest.fixture
def env(db_url: str, tmp_path, monkeypatch) -> dict[str, str]:
    """DESKBRIDGE_* variables pointing the CLI at this test's database (no sandbox), run from tmp_path."""
    values = {"DESKBRIDGE_DATABASE_URL": db_url, "DESKBRIDGE_SANDBOX": "off",
              "DESKBRIDGE_SECRET_KEY": generate_key(), "DESKBRIDGE_SECRET_KEY_FILE": str(tmp_path / "k")}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    return values
