"""The apps the trace tests run (test_otel.py, test_phoenix.py): a LangChain LCEL chain and a
LlamaIndex query engine over the same three documents, whose fake LLMs echo what was retrieved.

Each builder imports its framework inside (and skips without it), so this module imports with
neither installed. The `lc_chain` and `li_engine` fixtures over them are in conftest.py.
"""

from __future__ import annotations

from typing import Any

import pytest

DOCS = {
    "eiffel": "The Eiffel Tower stands in Paris, France. It was finished in 1889.",
    "louvre": "The Louvre is the most visited museum in the world. It houses the Mona Lisa.",
    "photo": "Photosynthesis converts light into chemical energy in plants.",
}
# Six words or more: the engine prepends the question to shorter answer sentences.
UNSUPPORTED = "Bananas are purple robots that sing opera loudly."


def echo(context: str) -> str:
    """What the fake LLMs answer: the first sentence of the first context chunk, plus a claim
    no source supports. The answer depends on what was retrieved, so mixed-up calls show."""
    first_chunk = context.strip().split("\n\n")[0].strip()
    return f"{first_chunk.split('. ')[0].rstrip('.')}. {UNSUPPORTED}"


class _HashingLCEmbeddings:
    """Factory for a LangChain `Embeddings` over the deterministic hashing embedder."""

    @staticmethod
    def make():
        from langchain_core.embeddings import Embeddings

        from rag_attrib.testing import HashingEmbedder

        class HashingEmbeddings(Embeddings):
            def __init__(self) -> None:
                self.embedder = HashingEmbedder()

            def embed_documents(self, texts):
                return self.embedder.encode(texts).tolist()

            def embed_query(self, text):
                return self.embed_documents([text])[0]

        return HashingEmbeddings()


def echo_chain() -> Any:
    """A real LCEL RAG chain: InMemoryVectorStore retriever, prompt, echoing fake chat model."""
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough
    from langchain_core.vectorstores import InMemoryVectorStore

    class EchoChatModel(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "echo"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            context = messages[0].content.split("Context:\n", 1)[1]
            message = AIMessage(content=echo(context))
            return ChatResult(generations=[ChatGeneration(message=message)])

    store = InMemoryVectorStore(_HashingLCEmbeddings.make())
    store.add_documents([Document(page_content=text, id=doc_id) for doc_id, text in DOCS.items()])
    retriever = store.as_retriever(search_kwargs={"k": 2})
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from the context.\nContext:\n{context}"), ("human", "{question}")]
    )
    format_docs = RunnableLambda(lambda docs: "\n\n".join(d.page_content for d in docs))
    return (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | prompt
        | EchoChatModel()
        | StrOutputParser()
    )


def echo_engine() -> tuple[Any, Any]:
    """A real VectorStoreIndex over three nodes, and a custom LLM that echoes: (index, llm)."""
    pytest.importorskip("llama_index.core")
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback
    from llama_index.core.schema import TextNode

    from rag_attrib.testing import HashingEmbedder

    hashing = HashingEmbedder()

    class HashingEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query):
            return hashing.encode([query])[0].tolist()

        async def _aget_query_embedding(self, query):
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text):
            return hashing.encode([text])[0].tolist()

    class EchoLLM(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="echo")

        @llm_completion_callback()
        def complete(self, prompt, formatted=False, **kwargs):
            context = prompt.split("---------------------\n")[1]
            return CompletionResponse(text=echo(context))

        @llm_completion_callback()
        def stream_complete(self, prompt, formatted=False, **kwargs):
            text = self.complete(prompt, formatted=formatted).text

            def gen():
                so_far = ""
                for k, word in enumerate(text.split(" ")):
                    delta = word if k == 0 else " " + word
                    so_far += delta
                    yield CompletionResponse(text=so_far, delta=delta)

            return gen()

    nodes = [TextNode(id_=doc_id, text=text) for doc_id, text in DOCS.items()]
    index = VectorStoreIndex(nodes=nodes, embed_model=HashingEmbedding(model_name="hashing"))
    return index, EchoLLM()
