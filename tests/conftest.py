"""Test-session settings: nothing a test runs may write outside its tmp_path."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache() -> Iterator[None]:
    """Point ``$XDG_CACHE_HOME`` (where ``minilm search`` and notebook 04 keep measured losses)
    at a temporary folder for the whole session, so no test writes to the user's cache."""
    old = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="testy-cache-") as tmp:
        os.environ["XDG_CACHE_HOME"] = tmp
        yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old
