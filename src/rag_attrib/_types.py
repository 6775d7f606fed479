"""Type aliases shared across modules."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatMatrix = NDArray[np.float32]
"""A 2-D float32 array; embedders return one with unit-length rows."""

FloatVector = NDArray[np.float32]
"""A 1-D float32 array."""

IntVector = NDArray[np.int64]
"""A 1-D int64 array of indices."""

JSONDict = dict[str, Any]
"""A JSON-safe mapping (what `to_dict()` returns)."""
