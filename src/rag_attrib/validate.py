"""Checks at the edges: what comes from users, files and embedders is made well-typed once.

Texts lose their lone surrogates (each becomes U+FFFD, one code point for one, so every offset
stays valid); metadata becomes a JSON-safe dict; values read back from JSON are checked for
type and range, and a bad one raises a `ValueError` that names its field; vectors from an
embedder are checked for shape and finiteness before anything is scored with them.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import math
import re
import uuid
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

from ._types import FloatMatrix
from .errors import RagAttribError

__all__ = [
    "EmbedderError",
    "check_vectors",
    "clean_metadata",
    "clean_text",
    "metadata_dict",
    "read_bool",
    "read_float",
    "read_int",
    "read_list",
    "read_mapping",
    "read_optional_str",
    "read_str",
]

_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_DEPTH = 32  # deeper metadata is dropped: nobody nests a title 32 levels down


class EmbedderError(RagAttribError, ValueError):
    """An embedder returned vectors of the wrong shape, or NaN / infinite values."""


# --- texts ------------------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (same length, so offsets hold).

    A str from JSON (`"\\ud800"`) or from `surrogateescape` decoding can hold them; no encoder,
    tokenizer or file write accepts them.
    """
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


# --- metadata ---------------------------------------------------------------------------------


def clean_metadata(value: object, where: str = "metadata") -> tuple[dict[str, Any], list[str]]:
    """A JSON-safe copy of `value`, and the paths of the parts that had to be dropped.

    Kept: str keys (int keys become str, as JSON writes them), None, str, bool, finite floats,
    integers of up to 64 bits, mappings, lists and tuples (as lists), sets (as sorted lists),
    numpy scalars and arrays; dates and times become ISO strings, UUIDs, paths and decimals
    their `str()`, enums their value. Dropped: anything else (objects, bytes, NaN, infinities,
    huge integers, nesting deeper than 32).
    A value that is not a mapping at all gives `{}`.
    """
    dropped: list[str] = []
    if not isinstance(value, Mapping):
        if value is not None:
            dropped.append(f"{where} (a {type(value).__name__}, not a mapping)")
        return {}, dropped
    out = _clean_mapping(value, where, 0, dropped)
    return out, dropped


def metadata_dict(value: object) -> dict[Any, Any]:
    """A framework document's metadata as a dict for adapters to add keys to.

    A mapping is copied; anything else (a str, a list) is kept under "metadata" rather than
    lost, and `clean_metadata` later makes it JSON-safe or drops it with a note.
    """
    if isinstance(value, Mapping):
        return dict(value)
    return {} if value is None else {"metadata": value}


_DROP = object()


def _clean_mapping(value: Mapping[Any, Any], where: str, depth: int, dropped: list[str]) -> Any:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(key, str):
            name = clean_text(key)
        elif isinstance(key, int) and not isinstance(key, bool):
            name = str(key)
        else:
            dropped.append(f"{where}[{key!r}] (a {type(key).__name__} key)")
            continue
        clean = _clean(item, f"{where}[{name!r}]", depth + 1, dropped)
        if clean is not _DROP:
            out[name] = clean
    return out


def _clean(value: Any, where: str, depth: int, dropped: list[str]) -> Any:
    if value is None or isinstance(value, bool):
        return value if value is None else bool(value)
    if isinstance(value, int):
        if value.bit_length() > 64:  # json.dumps refuses (or JS misreads) huge integers
            dropped.append(f"{where} (an integer of {value.bit_length()} bits)")
            return _DROP
        return int(value)  # an IntEnum becomes its plain value
    if isinstance(value, str):
        return clean_text(str(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        dropped.append(f"{where} ({value!r})")
        return _DROP
    if isinstance(value, np.ndarray):
        return _clean(value.tolist(), where, depth, dropped)
    if isinstance(value, np.generic):
        return _clean(value.item(), where, depth, dropped)
    if depth >= _MAX_DEPTH:
        dropped.append(f"{where} (nested deeper than {_MAX_DEPTH})")
        return _DROP
    if isinstance(value, Mapping):
        return _clean_mapping(value, where, depth, dropped)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        cleaned = [_clean(x, f"{where}[{i}]", depth + 1, dropped) for i, x in enumerate(items)]
        return [x for x in cleaned if x is not _DROP]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, PurePath, decimal.Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return _clean(value.value, where, depth, dropped)
    dropped.append(f"{where} (a {type(value).__name__})")
    return _DROP


# --- vectors ----------------------------------------------------------------------------------


def check_vectors(vectors: Any, rows: int) -> FloatMatrix:
    """`vectors` as float32 (rows, d), or `EmbedderError` saying what is wrong with them."""
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        msg = f"the embedder returned {type(vectors).__name__}, not a float matrix ({exc})"
        raise EmbedderError(msg) from None
    if arr.ndim != 2 or arr.shape[0] != rows or (rows and arr.shape[1] == 0):
        msg = f"the embedder returned shape {arr.shape} for {rows} texts; expected ({rows}, d)"
        raise EmbedderError(msg)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = int((~finite).sum())
        msg = f"the embedder returned NaN or infinite values for {bad} of {rows} texts"
        raise EmbedderError(msg)
    return arr


# --- values read back from JSON -----------------------------------------------------------------


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _fail(where: str, expected: str, value: object) -> ValueError:
    return ValueError(f"{where} must be {expected}; got {_describe(value)}")


def read_mapping(value: object, where: str) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else a `ValueError` naming `where`."""
    if not isinstance(value, Mapping):
        raise _fail(where, "an object", value)
    return value


def read_list(value: object, where: str) -> list[Any]:
    """`value` if it is a JSON array, else a `ValueError` naming `where`."""
    if not isinstance(value, (list, tuple)):
        raise _fail(where, "a list", value)
    return list(value)


def read_str(value: object, where: str) -> str:
    """`value` (lone surrogates replaced) if it is a string, else a `ValueError`."""
    if not isinstance(value, str):
        raise _fail(where, "a string", value)
    return clean_text(value)


def read_optional_str(value: object, where: str) -> str | None:
    """None, or `read_str(value)`."""
    return None if value is None else read_str(value, where)


def read_bool(value: object, where: str) -> bool:
    """`value` if it is true or false, else a `ValueError`."""
    if not isinstance(value, bool):
        raise _fail(where, "true or false", value)
    return value


def read_int(value: object, where: str, *, low: int = 0, high: int | None = None) -> int:
    """`value` if it is an integer in [low, high] (a float with no fraction counts)."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, float) and value.is_integer():
        value, ok = int(value), True
    if not ok or value < low or (high is not None and value > high):  # type: ignore[operator]
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise _fail(where, f"an integer {bound}", value)
    return int(value)  # type: ignore[call-overload,no-any-return]


def read_float(value: object, where: str) -> float:
    """`value` as a float if it is a finite number, else a `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, "a finite number", value)
    number = float(value)
    if not math.isfinite(number):
        raise _fail(where, "a finite number", value)
    return number
