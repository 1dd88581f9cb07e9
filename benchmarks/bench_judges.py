"""The judges' own accuracy: each embedded labelled source's judge on its real held-out split.

    .venv/bin/python benchmarks/bench_judges.py      # seconds when cached, ~1-2 min per judge cold

Writes `benchmarks/results/judges.json`. A judge is trained once per data content and cached
(`xdomain.metrics.judges`); training is seeded, so a cached judge is the judge a cold run trains.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch
from common import commit

from xdomain.config import DataConfig
from xdomain.data import load_domain
from xdomain.fingerprint import source_fingerprint
from xdomain.metrics import get_judge, label_accuracy

RESULTS = Path(__file__).parent / "results"
SOURCES = ["digits-handwritten", "digits-printed"]


def main() -> None:
    torch.set_num_threads(2)
    rows = []
    size = DataConfig().image_size
    for name in SOURCES:
        train = load_domain(name, "train", image_size=size)
        test = load_domain(name, "test", image_size=size)
        t0 = time.perf_counter()
        judge = get_judge(name, train.tensors(), test.tensors(), num_classes=train.num_classes)
        xt, yt = test.tensors()
        rows.append(
            {
                "source": name,
                "data": source_fingerprint(name),
                "n_train": len(train),
                "n_test": len(test),
                "heldout_acc": label_accuracy(judge, xt, yt),
                "recorded_acc": judge.heldout_accuracy,  # measured when it was trained
                "get_judge_s": round(time.perf_counter() - t0, 1),
            }
        )
        print(f"{name}: {rows[-1]['heldout_acc']:.4f} on {len(test)} real test images")
    out = {
        "commit": commit(),
        "machine": f"{platform.processor() or platform.machine()} x{os.cpu_count()}",
        "torch": torch.__version__,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "judges.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
