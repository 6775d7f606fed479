"""Shared fixtures: the deterministic embedder, and one real bundled model per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rag_attrib import Attributor
from rag_attrib.testing import HashingEmbedder


@pytest.fixture
def hashing_attributor() -> Attributor:
    """An Attributor over the deterministic hashing embedder (no model, no torch)."""
    return Attributor(HashingEmbedder())


@pytest.fixture(scope="session")
def real_attributor() -> Attributor:
    """An Attributor over the real bundled all-MiniLM-L6-v2, shared by the session."""
    return Attributor()
