"""Shared fixtures: the deterministic embedder, one real bundled model per session, and the
framework fixtures several test files use.

A framework fixture imports its framework (and its helper module beside this file:
_llamaindex.py, _langchain.py, _echo_apps.py) inside its body, so a session that never asks
for one never imports LlamaIndex or LangChain. A test file that defines a fixture of the same
name uses its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from hypothesis import HealthCheck, settings

from rag_attrib import Attributor
from rag_attrib.testing import HashingEmbedder

if TYPE_CHECKING:
    from _llamaindex import Recorder
    from langchain_core.vectorstores import InMemoryVectorStore
    from llama_index.core import VectorStoreIndex

# The helpers' own checks assert; rewrite them so a failure shows the values, as in a test.
pytest.register_assert_rewrite("_checks", "_langchain", "_llamaindex")

# Property tests are derandomized; only the machine's load can fail them through timing
# (CI shares two cores), so no example has a deadline and slow generation is not an error.
settings.register_profile("rag_attrib", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("rag_attrib")


@pytest.fixture
def hashing_attributor() -> Attributor:
    """An Attributor over the deterministic hashing embedder (no model, no torch)."""
    return Attributor(HashingEmbedder())


@pytest.fixture
def attributor(hashing_attributor: Attributor) -> Attributor:
    """The hashing attributor, under the name the LangChain tests give it."""
    return hashing_attributor


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


# --- LlamaIndex (helpers: _llamaindex.py) ------------------------------------------------------


@pytest.fixture(scope="module")
def index() -> VectorStoreIndex:
    """A real vector index over the topic documents, embedded with the hashing embedder."""
    from _llamaindex import topic_documents
    from llama_index.core import VectorStoreIndex

    from rag_attrib.integrations.llamaindex import MiniLMEmbedding

    return VectorStoreIndex.from_documents(
        topic_documents(), embed_model=MiniLMEmbedding(HashingEmbedder())
    )


@pytest.fixture
def recorder(hashing_attributor: Attributor) -> Iterator[Recorder]:
    """Instrument LlamaIndex with the hashing attributor and a recording exporter."""
    from _llamaindex import Recorder

    from rag_attrib.integrations.llamaindex import instrument, uninstrument

    rec = Recorder()
    instrument(hashing_attributor, exporters=[rec])
    yield rec
    uninstrument()


# --- LangChain (helpers: _langchain.py) --------------------------------------------------------


@pytest.fixture
def store(attributor: Attributor) -> InMemoryVectorStore:
    """A LangChain in-memory vector store over the Halden documents, embedded by `attributor`."""
    from _langchain import DOCS
    from langchain_core.vectorstores import InMemoryVectorStore

    from rag_attrib.integrations.langchain import MiniLMEmbeddings

    vector_store = InMemoryVectorStore(MiniLMEmbeddings(attributor))
    vector_store.add_documents(DOCS)
    return vector_store


# --- the trace tests' apps (test_otel, test_phoenix; _echo_apps.py) ------------------------------


@pytest.fixture
def lc_chain() -> Any:
    """A real LCEL RAG chain: InMemoryVectorStore retriever, prompt, echoing fake chat model."""
    from _echo_apps import echo_chain

    return echo_chain()


@pytest.fixture
def li_engine() -> Any:
    """A real VectorStoreIndex over three nodes and an echoing custom LLM: (index, llm)."""
    from _echo_apps import echo_engine

    return echo_engine()
