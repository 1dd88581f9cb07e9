"""What a run writes while it trains, beside its checkpoints: `metrics.jsonl` (one JSON record a
line: the header, train and eval records), the same scalars and the sample grids in TensorBoard,
and `final_metrics.json` at the end. Only rank 0 writes; other ranks hold a `RunLog` whose calls
do nothing, so the Trainer never asks which rank it is before logging.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xdomain.io import atomic_write_text


class RunLog:
    """`metrics.jsonl` + TensorBoard of the run in `out` (`main`: this process writes)."""

    def __init__(self, out: Path, *, main: bool) -> None:
        self.path = out / "metrics.jsonl"
        self.out, self.main = out, main
        self.tb: Any = None  # opened by `open_tensorboard`: the header is written before it

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (`step`, `kind` and its values); numbers also go to TensorBoard."""
        if not self.main:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is None:
            return
        for k, v in record.items():
            if k not in ("step", "kind", "time") and isinstance(v, (int, float)):
                self.tb.add_scalar(f"{record['kind']}/{k}", v, record["step"])

    def truncate(self, step: int) -> None:
        """Drop records logged after `step` (a resumed run logs them again); a line cut by a
        kill is dropped too. Rewritten atomically: a kill now keeps the old log."""
        if not self.main or not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    keep.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        atomic_write_text(self.path, "".join(x + "\n" for x in keep))

    def open_tensorboard(self, step: int) -> None:
        """TensorBoard under `out/tb`; a resumed run purges the events written after `step`."""
        if self.main:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.out / "tb"), purge_step=step or None)

    def image(self, png: Path, step: int) -> None:
        """A sample grid as a TensorBoard image too (IMAGES tab), beside the scalars."""
        if self.tb is None or not png.is_file():
            return
        import numpy as np
        from PIL import Image

        with Image.open(png) as im:
            self.tb.add_image("samples", np.asarray(im.convert("RGB")), step, dataformats="HWC")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None

    def final(self, best: dict[str, Any], data_id: str) -> dict[str, Any]:
        """The last eval record, and the best checkpoint's value when one is selected, written
        to `final_metrics.json`."""
        records = [json.loads(x) for x in self.path.read_text().splitlines()]
        evals = [r for r in records if r.get("kind") == "eval"]
        out = {k: v for k, v in (evals[-1] if evals else {}).items() if k != "kind"}
        if best:
            out["best_step"] = best["step"]
            out[f"best_{best['metric']}"] = best["value"]
        out["data_fingerprint"] = data_id
        atomic_write_text(self.out / "final_metrics.json", json.dumps(out, indent=1))
        return out
