"""datatrove's MinHash deduplication of a JSONL corpus, timed: runs inside .venv-datatrove.

The standard four stages (signatures, buckets, clusters, filter) with the default MinhashConfig
and English word tokenizer, each on a LocalPipelineExecutor with `--workers` processes. The
corpus folder holds one JSONL shard (fields `id`, `text`) per signature/filter task. Writes JSON
to `--out`: wall-clock seconds of the four stages, peak RSS of the whole process tree, and the
ids of the documents the filter removed.

    .venv-datatrove/bin/python benchmarks/peers/datatrove_minhash.py CORPUS_DIR WORK_DIR --out result.json
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import threading
import time
from importlib.metadata import version
from pathlib import Path

import orjson
import psutil
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.typeshelper import Languages

SAMPLE_SECONDS = 0.05


class TreeRssSampler:
    """Samples the summed RSS of this process and all its descendants on a thread; keeps the peak."""

    def __init__(self):
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        root = psutil.Process()
        while not self._stop.wait(SAMPLE_SECONDS):
            self.peak_bytes = max(self.peak_bytes, tree_rss(root))


def tree_rss(root: psutil.Process) -> int:
    """Summed RSS in bytes of `root` and its live descendants."""
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def rusage_peak_bytes() -> int:
    """The largest peak RSS of any single process (this one or a waited-for child), in bytes."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * 1024


def stages(corpus: Path, work: Path, config: MinhashConfig, tasks: int, workers: int) -> list[LocalPipelineExecutor]:
    """The four MinHash executors in run order, as in datatrove's minhash example."""
    logs = work / "logs"
    return [
        LocalPipelineExecutor(
            pipeline=[
                JsonlReader(str(corpus)),
                MinhashDedupSignature(str(work / "signatures"), config=config, language=Languages.english),
            ],
            tasks=tasks,
            workers=workers,
            logging_dir=str(logs / "signatures"),
        ),
        LocalPipelineExecutor(
            pipeline=[MinhashDedupBuckets(str(work / "signatures"), str(work / "buckets"), config=config)],
            tasks=config.num_buckets,
            workers=workers,
            logging_dir=str(logs / "buckets"),
        ),
        LocalPipelineExecutor(
            pipeline=[MinhashDedupCluster(str(work / "buckets"), str(work / "remove_ids"), config=config)],
            tasks=1,
            logging_dir=str(logs / "clusters"),
        ),
        LocalPipelineExecutor(
            pipeline=[
                JsonlReader(str(corpus)),
                MinhashDedupFilter(
                    str(work / "remove_ids"), exclusion_writer=JsonlWriter(str(work / "removed"), compression=None)
                ),
            ],
            tasks=tasks,
            workers=workers,
            logging_dir=str(logs / "filter"),
        ),
    ]


def removed_ids(folder: Path) -> list[str]:
    """The `id` of every document the filter stage wrote to its exclusion folder."""
    return [orjson.loads(line)["id"] for path in sorted(folder.glob("*.jsonl")) for line in path.open("rb")]


def dedup(corpus: Path, work: Path, workers: int) -> dict:
    """Run the four stages on a fresh `work` folder; report seconds, peak RSS and removed ids."""
    shutil.rmtree(work, ignore_errors=True)
    config = MinhashConfig()
    tasks = len(list(corpus.glob("*.jsonl")))
    executors = stages(corpus, work, config, tasks, workers)
    with TreeRssSampler() as sampler:
        started = time.perf_counter()
        for executor in executors:
            executor.run()
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_rss_mb": max(sampler.peak_bytes, rusage_peak_bytes()) / 2**20,
        "removed_ids": removed_ids(work / "removed"),
        "config": str(config),
        "tasks": tasks,
        "workers": workers,
        "datatrove_version": version("datatrove"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="folder of JSONL shards (id, text)")
    parser.add_argument("work", type=Path, help="scratch folder, emptied first")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    parser.add_argument("--workers", type=int, default=2, help="processes per stage")
    args = parser.parse_args()
    args.out.write_text(json.dumps(dedup(args.corpus, args.work, args.workers)))


if __name__ == "__main__":
    main()
