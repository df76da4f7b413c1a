"""Predictor training survives a kill (issue 12.4): a run stopped after some epochs and
resumed from its checkpoint ends bit-identical to an uninterrupted run; bad checkpoints
are refused with the file and the reason."""
import pytest
import torch

from nasbench.errors import CheckpointError
from nasbench.predictors import train_predictor
from nasbench.predictors.ncp import benchmark_records, default_metric_groups
from test_ncp import seg  # noqa: F401  (fixture)


class Stop(Exception):
    pass


def stop_after(n):
    seen = []

    def log(msg):
        seen.append(msg)
        if len(seen) == n:
            raise Stop
    return log


def test_resume_is_bit_identical(seg, tmp_path):  # noqa: F811
    recs, groups = benchmark_records(seg)[:600], default_metric_groups(seg)
    a, ia = train_predictor(recs, groups, epochs=12, seed=3)
    ckpt = tmp_path / "state.pth"
    with pytest.raises(Stop):  # killed after 8 epochs; the last checkpoint holds 5
        train_predictor(recs, groups, epochs=12, seed=3, ckpt=ckpt, ckpt_every=5, log=stop_after(8))
    assert torch.load(ckpt, weights_only=True)["epoch"] == 5
    b, ib = train_predictor(recs, groups, epochs=12, seed=3, ckpt=ckpt, ckpt_every=5, resume=True)
    assert ib["history"] == ia["history"] and ib["best_epoch"] == ia["best_epoch"]
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_bad_training_checkpoints(seg, tmp_path):  # noqa: F811
    recs, groups = benchmark_records(seg)[:100], default_metric_groups(seg)
    with pytest.raises(CheckpointError, match="no predictor training checkpoint"):
        train_predictor(recs, groups, epochs=2, ckpt=tmp_path / "none.pth", resume=True)
    ckpt = tmp_path / "s.pth"
    train_predictor(recs, groups, epochs=2, ckpt=ckpt)
    with pytest.raises(CheckpointError, match="written for 2 epochs, not 3"):
        train_predictor(recs, groups, epochs=3, ckpt=ckpt, resume=True)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="unreadable"):
        train_predictor(recs, groups, epochs=2, ckpt=ckpt, resume=True)
    torch.save({"format": "other"}, ckpt)
    with pytest.raises(CheckpointError, match="not a predictor training checkpoint"):
        train_predictor(recs, groups, epochs=2, ckpt=ckpt, resume=True)
