"""A new method is its own files plus a registration: a toy method defined entirely here.

The space, supernet, algorithm (with its own config keys, its own loss and a
batch format of its own) and evaluator below live only in this file. They are
registered, and supernet training, search and retraining run through the
same functions the tools call, without a change to the package.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nasbench.algorithms.base import Algorithm
from nasbench.config import load_config
from nasbench.errors import ConfigError
from nasbench.evaluators.base import Evaluator
from nasbench.pipeline import retrain, search, train_supernet
from nasbench.registry import ALGORITHMS, EVALUATORS, SPACES, Key
from nasbench.spaces.base import SearchSpace
from nasbench.supernets.base import Supernet

KERNELS = (1, 3)  # gene value v: a v-th kernel conv


class PluginNet(nn.Module):
    """Standalone network: one conv per gene (kernel 1 or 3), GAP, linear. [N, 3, H, W] -> [N, 10]."""

    def __init__(self, arch, num_classes=10, width=8):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(3 if i == 0 else width, width, KERNELS[g], padding=KERNELS[g] // 2)
                                   for i, g in enumerate(arch))
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        for c in self.convs:
            x = F.relu(c(x))
        return self.fc(x.mean((2, 3)))


class PluginSupernet(Supernet):
    """Both kernels per layer; ``set_active`` picks one per layer."""

    def __init__(self, space, width=8):
        super().__init__()
        self.space = space
        self.layers = nn.ModuleList(nn.ModuleList(nn.Conv2d(3 if i == 0 else width, width, k, padding=k // 2)
                                                  for k in KERNELS) for i in range(space.num_genes))
        self.fc = nn.Linear(width, 10)
        self.active = (0,) * space.num_genes

    def set_active(self, arch, side="left"):
        self.active = self.space.validate(arch)

    def forward(self, x):
        for layer, g in zip(self.layers, self.active):
            x = F.relu(layer[g](x))
        return self.fc(x.mean((2, 3)))


class PluginSpace(SearchSpace):
    name = "plugin_space"

    def __init__(self, depth: int = 3, num_classes: int = 10):
        self.depth, self.num_classes = int(depth), int(num_classes)

    @property
    def num_genes(self):
        return self.depth

    def choices(self, i):
        return (0, 1)

    def build(self, arch, num_classes=None):
        return PluginNet(self.validate(arch), num_classes or self.num_classes)

    def build_supernet(self):
        return PluginSupernet(self)

    def flops(self, arch):
        return int(sum(8 * 8 * KERNELS[g] ** 2 for g in self.validate(arch)))

    def params(self, arch):
        return sum(p.numel() for p in self.build(arch).parameters())

    def cost(self, arch):
        return self.flops(arch), self.params(arch)


class PluginAlgorithm(Algorithm):
    """One uniform path per step; the batch is a dict and the loss is the algorithm's own."""

    KEYS = {"label_noise": Key(0.0, "fraction of targets replaced by random labels", float, (0, 1))}
    default_evaluator = "plugin_score"
    find_unused_parameters = True  # the inactive kernel of each layer gets no gradient

    def __init__(self, space, seed=0, label_noise=0.0):
        super().__init__(space, seed)
        self.label_noise = label_noise
        self.steps = 0

    def train_loader(self, make_loader):
        return DictLoader(make_loader("train", True))

    def train_step(self, ctx, batch):
        assert set(batch) == {"x", "y"}  # the trainer passed our own batch format through
        ctx.module.set_active(self.space.sample(self.rng))
        y = batch["y"]
        if self.label_noise:
            flip = torch.rand(y.shape[0]) < self.label_noise
            y = torch.where(flip, torch.randint(0, 10, y.shape), y)
        loss = F.nll_loss(F.log_softmax(ctx.model(batch["x"]), 1), y)
        ctx.backward(loss)
        self.steps += 1
        return {"loss": loss.detach()}

    def state_dict(self):
        return {**super().state_dict(), "steps": self.steps}

    def load_state_dict(self, d):
        super().load_state_dict(d)
        self.steps = d["steps"]


class DictLoader:
    """Wraps a nasbench loader so that batches are ``{"x": images, "y": targets}``."""

    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner)

    def epoch(self, e, start=0):
        for x, y in self.inner.epoch(e, start=start):
            yield {"x": x, "y": y}


class PluginScore(Evaluator):
    """Data-free score: the mean |weight| of each chosen conv, plus ``bonus`` per 3x3 conv."""

    KEYS = {"bonus": Key(0.0, "score added per 3x3 layer", float, (0, None))}

    def __init__(self, supernet, bonus):
        self.supernet, self.bonus = supernet, bonus

    @classmethod
    def check(cls, supernet):
        if not isinstance(supernet, PluginSupernet):
            raise ConfigError("plugin_score scores plugin supernets only")

    @classmethod
    def from_config(cls, settings, ctx):
        return cls(ctx.supernet, settings["bonus"])

    def evaluate(self, archs):
        out = []
        for a in archs:
            s = sum(float(self.supernet.layers[i][g].weight.detach().abs().mean()) + self.bonus * g for i, g in enumerate(a))
            out.append({"score": s, "flops": self.supernet.space.flops(a)})
        return out


@pytest.fixture
def plugin():
    SPACES.register("plugin_space")(PluginSpace)
    ALGORITHMS.register("plugin_algo")(PluginAlgorithm)
    EVALUATORS.register("plugin_score")(PluginScore)
    yield
    for reg, name in ((SPACES, "plugin_space"), (ALGORITHMS, "plugin_algo"), (EVALUATORS, "plugin_score")):
        reg.unregister(name)


def _cfg(tmp_path, data_root, extra=""):
    path = tmp_path / "plugin.yaml"
    path.write_text(f"""
device: cpu
data: {{root: {data_root}, train_size: 128, val_size: 50, test_size: 50, batch_size: 32, eval_batch_size: 50}}
space: {{type: plugin_space, depth: 3}}
algorithm: {{type: plugin_algo, label_noise: 0.1}}
eval: {{type: auto, bonus: 1.0}}
search: {{type: random, num_queries: 5}}
train: {{max_steps: 4, log_interval: 2, ckpt_interval: 2}}
retrain: {{max_steps: 2, log_interval: 1}}
{extra}""")
    return path


def test_a_method_defined_in_a_test_runs_train_search_retrain(plugin, tmp_path, data_root):
    cfg = load_config(_cfg(tmp_path, data_root))
    assert cfg.algorithm == {"type": "plugin_algo", "label_noise": 0.1}
    assert cfg.eval == {"type": "plugin_score", "bonus": 1.0}  # auto -> the algorithm's evaluator
    ckpt = train_supernet(cfg, tmp_path / "sn")
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] == 4 and state["algorithm"]["steps"] == 4
    res = search(cfg, ckpt, tmp_path / "search")
    saved = json.loads((tmp_path / "search" / "result.json").read_text())
    assert saved["arch"] == res["arch"] and res["num_queries"] == 5 and res["evaluator"] == "plugin_score"
    # the bonus of 1.0 per 3x3 layer dominates the tiny weight means: the search finds all-3x3 if it saw it
    seen = {h["arch"]: h["score"] for h in res["history"]}
    assert res["arch"] == max(seen, key=seen.get)
    out = retrain(cfg, tmp_path / "search" / "result.json", tmp_path / "retrain")
    assert out["arch"] == res["arch"] and out["steps"] == 2 and 0 <= out["top1"] <= 100


def test_plugin_keys_are_strict(plugin, tmp_path, data_root):
    with pytest.raises(ConfigError, match="'algorithm.label_nois' .* plugin_algo; did you mean 'algorithm.label_noise'"):
        load_config(_cfg(tmp_path, data_root), ["algorithm.label_nois=0.2"])
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\]"):
        load_config(_cfg(tmp_path, data_root), ["algorithm.label_noise=2"])
    with pytest.raises(ConfigError, match="'space.dept'"):
        load_config(_cfg(tmp_path, data_root), ["space.dept=2"])
    with pytest.raises(ConfigError, match="'eval.recal_batches' .* plugin_score"):
        load_config(_cfg(tmp_path, data_root), ["eval.recal_batches=2"])


def test_plugin_resume_is_exact(plugin, tmp_path, data_root):
    cfg = load_config(_cfg(tmp_path, data_root))
    full = torch.load(train_supernet(cfg, tmp_path / "a"), weights_only=False)
    train_supernet(cfg, tmp_path / "b", stop_after=2)
    part = torch.load(train_supernet(cfg, tmp_path / "b", resume=True), weights_only=False)
    for k, v in full["model"].items():
        assert torch.equal(v, part["model"][k]), k
    assert np.array_equal(full["algorithm"]["rng"]["state"]["state"], part["algorithm"]["rng"]["state"]["state"])
