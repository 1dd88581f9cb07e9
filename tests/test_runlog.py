"""`runlog.RunLog`: what a run writes beside its checkpoints (metrics.jsonl, final_metrics.json)."""

from __future__ import annotations

import json

from xdomain.runlog import RunLog


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_truncate_drops_later_records_and_a_line_cut_by_a_kill(tmp_path):
    log = RunLog(tmp_path, main=True)
    for step in (0, 10, 20, 30):
        log.write({"step": step, "kind": "train", "loss": float(step)})
    with open(log.path, "a") as f:
        f.write('{"step": 40, "kind": "tr')  # the kill came mid-line
    log.truncate(20)
    assert [r["step"] for r in _records(log.path)] == [0, 10, 20]
    assert log.path.read_text().endswith("\n")


def test_final_is_the_last_eval_record_and_the_best(tmp_path):
    log = RunLog(tmp_path, main=True)
    log.write({"step": 10, "kind": "eval", "acc": 0.5})
    log.write({"step": 20, "kind": "eval", "acc": 0.4})
    log.write({"step": 20, "kind": "train", "loss": 1.0})
    out = log.final({"metric": "acc", "value": 0.5, "step": 10}, data_id="abc")
    assert out == {"step": 20, "acc": 0.4, "best_step": 10, "best_acc": 0.5,
                   "data_fingerprint": "abc"}  # fmt: skip
    assert json.loads((tmp_path / "final_metrics.json").read_text()) == out


def test_other_ranks_write_nothing(tmp_path):
    log = RunLog(tmp_path, main=False)
    log.write({"step": 1, "kind": "train", "loss": 1.0})
    log.open_tensorboard(0)
    log.truncate(0)
    log.close()
    assert list(tmp_path.iterdir()) == []
