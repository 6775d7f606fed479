"""The exceptions rag_attrib raises.

RagAttribError
 ├── ConfigError(ValueError)            an option has an invalid value
 ├── EmptyInputError(ValueError)        input that cannot be attributed at all
 ├── InputTooLargeError(ValueError)     input over the size policy (AttributionConfig limits)
 └── MissingDependencyError(ImportError) an optional dependency is not installed
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = [
    "ConfigError",
    "EmptyInputError",
    "InputTooLargeError",
    "MissingDependencyError",
    "RagAttribError",
    "import_optional",
]


class RagAttribError(Exception):
    """Base class of every error rag_attrib raises on purpose."""


class ConfigError(RagAttribError, ValueError):
    """An option has an invalid value; the message lists the valid ones."""


class EmptyInputError(RagAttribError, ValueError):
    """Input that cannot be attributed (for example, a CLI run given an empty answer)."""


class InputTooLargeError(RagAttribError, ValueError):
    """An answer or sources over `AttributionConfig.max_answer_chars` / `max_source_chars`."""


class MissingDependencyError(RagAttribError, ImportError):
    """An optional dependency is missing; the message names the `pip install` line."""


def import_optional(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import `module` or raise `MissingDependencyError` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0].replace("_", "-")
        msg = f"{feature} needs {package}: pip install 'rag-attrib[{extra}]'"
        raise MissingDependencyError(msg, name=module) from exc
