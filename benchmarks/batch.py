"""Throughput of `rag-attrib batch` on a fixed input: local workers, Ray actors, a plain loop.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/batch.py [--n 2000] [--configs local1,local2,ray1,ray2,loop,seed]

Input: the first N claim / passage records of factcheck_gpt (evaluation side; only speed is
measured here), written once as JSONL. Each configuration runs `run_batch` into a fresh
folder, timed from start to summary (model loads and Ray start-up included), and its peak
memory is the largest sum of RSS over the process tree (Ray's shared object store pages are
counted once per process, so Ray's figure is an upper bound). CPU-s is the CPU time of the
whole tree, so records per CPU-second stays comparable when other jobs load the machine.
Every configuration is checked against the single-process loop: ids, verdicts, citations and
scores to 1e-6. Prints figures; asserts nothing.

  local1  the local engine, 1 worker with 1 encoder thread
  local2  the local engine, 2 workers x (cores // 2) threads
  ray1    Ray Data, 1 actor; ray2: 2 actors (a local Ray started and stopped by the run)
  loop    Attributor(cache off) over the records in this process, default threads
  seed    the seed article's recipe (benchmarks/latency.py) on the torch model, same records
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _evaldata import load_records

from rag_attrib.batch import read_results, run_batch
from rag_attrib.batch.work import make_attributor
from rag_attrib.results import Source

TOL = 1e-6


def build_input(n: int, path: Path) -> list[dict[str, Any]]:
    rows = load_records("factcheck_gpt")[:n]
    records = [
        {
            "id": str(r["id"]),
            "answer": r["claim"],
            "sources": [{"id": str(c["id"]), "text": c["text"]} for c in r["context"]],
            "question": None,
        }
        for r in rows
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return records


class TreeSampler:
    """Peak summed RSS and CPU seconds of this process and its descendants."""

    def __init__(self) -> None:
        self.peak = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._base = self._cpu_of(psutil.Process())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _cpu_of(p: psutil.Process) -> float:
        t = p.cpu_times()
        return float(t.user + t.system + t.children_user + t.children_system)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            rss = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    rss += p.memory_info().rss
                    if p.pid != me.pid:
                        self.cpu[p.pid] = float(sum(p.cpu_times()[:2]))
                except psutil.Error:
                    pass
            self.peak = max(self.peak, rss)
            self._stop.wait(0.2)

    def cpu_seconds(self) -> float:
        # children still alive are read from the samples; reaped ones are in children_* times
        own = self._cpu_of(psutil.Process()) - self._base
        return own + sum(self.cpu.values())


def attributions(out: Path) -> dict[str, dict[str, Any]]:
    return {
        row["id"]: json.loads(row["attribution"])
        if isinstance(row["attribution"], str)
        else row["attribution"]
        for row in read_results(out, attribution=True)
        if row["attribution"] is not None
    }


def differences(a: dict[str, Any], b: dict[str, Any]) -> tuple[int, float]:
    """(records whose verdicts or citations differ, largest score difference) of a vs b."""
    mismatched, worst = 0, 0.0
    for key, x in b.items():
        y = a.get(key)
        if y is None:
            mismatched += 1
            continue
        sx, sy = x["answer_sentences"], y["answer_sentences"]
        same = len(sx) == len(sy) and all(
            p["supported"] == q["supported"]
            and [(c["source_id"], c["sentence_index"]) for c in p["citations"]]
            == [(c["source_id"], c["sentence_index"]) for c in q["citations"]]
            for p, q in zip(sx, sy, strict=False)
        )
        mismatched += not same
        for p, q in zip(sx, sy, strict=False):
            worst = max(worst, abs(p["support"] - q["support"]))
            for c, d in zip(p["citations"], q["citations"], strict=False):
                worst = max(worst, abs(c["score"] - d["score"]))
        for s, t in zip(x["sources"], y["sources"], strict=False):
            worst = max(worst, abs(s["score"] - t["score"]))
    return mismatched + len(set(a) - set(b)), worst


def run_config(
    name: str, source: Path, work: Path, records: list[dict[str, Any]]
) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    out = work / name
    load = os.getloadavg()[0]
    with TreeSampler() as sampler:
        started = time.perf_counter()
        if name == "loop":
            attributor = make_attributor(None)
            found = {  # as a batch worker attributes a record (attribute_rows)
                r["id"]: attributor.attribute(
                    r["answer"],
                    [Source(s["id"], s["text"]) for s in r["sources"]],
                    r["question"],
                ).to_dict()
                for r in records
            }
        elif name == "seed":
            from latency import seed_recipe

            from rag_attrib.embedders import SentenceTransformerEmbedder
            from rag_attrib.engine import to_sources

            model = SentenceTransformerEmbedder().model
            for r in records:
                seed_recipe(model, r["answer"], to_sources(r["sources"]))
            found = {}
        else:
            engine = "ray" if name.startswith("ray") else "local"
            workers = int(name[-1])
            threads = 1 if name == "local1" else max(1, cores // workers)
            run_batch(source, out, engine=engine, workers=workers, threads=threads, batch_size=16)
            found = attributions(out)
        seconds = time.perf_counter() - started
    return {
        "name": name,
        "seconds": seconds,
        "rps": len(records) / seconds,
        "cpu_s": sampler.cpu_seconds(),
        "peak_mb": sampler.peak / 2**20,
        "load": load,
        "found": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--configs", default="loop,local1,local2,ray1,ray2,seed")
    args = parser.parse_args()
    names = args.configs.split(",")
    with tempfile.TemporaryDirectory(prefix="rag-attrib-batch-") as tmp:
        work = Path(tmp)
        source = work / "in.jsonl"
        records = build_input(args.n, source)
        print(f"{len(records)} records of factcheck_gpt, {os.cpu_count()} cores", flush=True)
        rows = []
        for name in names:
            row = run_config(name, source, work, records)
            rows.append(row)
            print(f"  {name}: {row['rps']:.1f} records/s, {row['seconds']:.0f} s", flush=True)
    reference = next((r["found"] for r in rows if r["name"] == "loop"), None)
    base = next((r["rps"] for r in rows if r["name"] == "local1"), None)
    print()
    head = f"{'config':<8} {'records/s':>9} {'vs local1':>9} {'rec/CPU-s':>9} {'peak MB':>8} {'load':>5}  same as loop"
    print(head)
    for r in rows:
        ratio = f"{r['rps'] / base:.2f}x" if base else "-"
        if reference is None or r["name"] in ("loop", "seed"):
            same = "-"
        else:
            bad, worst = differences(r["found"], reference)
            same = f"{len(r['found'])} ids, {bad} differ, max |d score| {worst:.1e}"
            same += (
                " (ok)"
                if bad == 0 and worst <= TOL and len(r["found"]) == len(reference)
                else " (DIFFERS)"
            )
        per_cpu = len(records) / r["cpu_s"] if r["cpu_s"] else 0.0
        print(
            f"{r['name']:<8} {r['rps']:>9.1f} {ratio:>9} {per_cpu:>9.1f} {r['peak_mb']:>8.0f} "
            f"{r['load']:>5.1f}  {same}"
        )
    print("\nload: the 1-minute load average when the configuration started (2 cores).")


if __name__ == "__main__":
    main()
