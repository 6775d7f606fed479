"""Shared fixtures: the deterministic embedder, and one real bundled model per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from hypothesis import HealthCheck, settings

from rag_attrib import Attributor
from rag_attrib.testing import HashingEmbedder

# Property tests are derandomized; only the machine's load can fail them through timing
# (CI shares two cores), so no example has a deadline and slow generation is not an error.
settings.register_profile("rag_attrib", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("rag_attrib")


@pytest.fixture
def hashing_attributor() -> Attributor:
    """An Attributor over the deterministic hashing embedder (no model, no torch)."""
    return Attributor(HashingEmbedder())


@pytest.fixture
def instrumented(hashing_attributor: Attributor) -> Iterator[None]:
    """LlamaIndex `instrument()` over the hashing attributor, removed afterwards."""
    from rag_attrib.integrations.llamaindex import instrument, uninstrument

    instrument(hashing_attributor)
    yield
    uninstrument()


@pytest.fixture(scope="session")
def real_attributor() -> Attributor:
    """An Attributor over the real bundled all-MiniLM-L6-v2, shared by the session."""
    return Attributor()
