"""How the integrations find a text inside what an LLM was shown; imports no framework.

A text is looked for by its opening with spaces collapsed: a prompt re-wraps lines, and a
prompt filled with a list of documents shows their repr, newlines as "\\n" (LangChain's
summarisation tutorial formats `[Document(...), ...]` into its reduce prompt).
"""

from __future__ import annotations

import re

__all__ = ["PROBE", "collapsed"]

_SPACE = re.compile(r"(?:\s|\\[nrt])+")
PROBE = 200  # characters of a text looked for in what the LLM was shown


def collapsed(text: str) -> str:
    """`text` with each run of spaces (a repr's "\\n" too) made one space."""
    return _SPACE.sub(" ", text)
