"""NATS-Bench size space (BossNAS ranking file) and NAS-Bench-201 (NCP pickle): loaders, keys, embeddings."""
import pickle
import re

import numpy as np
import pytest

from nasbench.benchmarks.nas_bench_201 import load_nas_bench_201
from nasbench.benchmarks.nats_sss import load_nats_sss, parse_acc_yaml
from nasbench.benchmarks.pickle_io import load_pickle
from nasbench.errors import ArchError, DataNotFoundError, NasbenchError
from nasbench.registry import SPACES
from nasbench.spaces.nas_bench_201 import EMBED_OPS, OPS, NASBench201Space
from nasbench.spaces.nats_sss import CHANNELS, NATSSizeSpace

NATS_REL = "nats_sss/nats_cifar10_acc_rank.yml"
NB201_REL = "nas_bench_201/trainval.pkl"


@pytest.fixture(scope="session")
def nats(bench_of):
    return bench_of("nats_sss/cifar10")


@pytest.fixture(scope="session")
def nb201(bench_of):
    return bench_of("nas_bench_201/imagenet16_120")


@pytest.fixture(scope="session")
def nb201_raw(bench_root):
    return load_pickle(bench_root / NB201_REL)


# ---------------------------------------------------------------------------- NATS
def _line_parse(path):
    """Independent reference parser: one ``key: value`` per line, key optionally single-quoted."""
    out, unquoted = {}, 0
    pat = re.compile(r"^('?)([0-9:]+)\1: ([0-9.]+)$")
    with open(path) as f:
        for line in f:
            m = pat.match(line.rstrip("\n"))
            assert m, line
            out[m.group(2)] = float(m.group(3))
            unquoted += m.group(1) == ""
    return out, unquoted


def test_nats_keys_are_strings_with_file_values(bench_root):
    raw = parse_acc_yaml(bench_root / NATS_REL)
    ref, unquoted = _line_parse(bench_root / NATS_REL)
    assert len(raw) == 32768 and all(isinstance(k, str) for k in raw)
    assert unquoted > 10000  # the file really has unquoted keys
    assert raw == ref
    assert raw["16:16:16:16:64"] == 89.58  # unquoted in the file
    assert raw["16:16:16:16:8"] == 86.27  # quoted in the file (would be a base-60 int otherwise)


def test_nats_yaml_sexagesimal_keys_stay_strings(tmp_path):
    p = tmp_path / "x.yml"
    p.write_text("8:8:8:8:8: 80.5\n'16:16:16:16:8': 81\n64:64:64:64:64: 93\n")
    assert parse_acc_yaml(p) == {"8:8:8:8:8": 80.5, "16:16:16:16:8": 81.0, "64:64:64:64:64": 93.0}
    p.write_text("8:8:8:8:8: 80.5\n'8:8:8:8:8': 81\n")
    with pytest.raises(NasbenchError, match="more than once"):
        parse_acc_yaml(p)
    p.write_text("8:8:8:8:8: high\n")
    with pytest.raises(NasbenchError, match="not a finite accuracy"):
        parse_acc_yaml(p)


def test_nats_benchmark_interface(nats):
    keys = list(nats)
    assert len(keys) == 32768 == len(nats.space) and len(set(keys)) == 32768
    assert set(keys) == {nats.space.encode(a) for a in nats.space}
    q = nats.query("16:16:16:16:64")
    assert q == {"acc": 89.58, "flops": None}
    assert nats.query((16, 16, 16, 16, 64)) == q
    best_key, best = nats.best()
    assert nats.rank(best_key) == 1 and best["acc"] == max(nats.query(k)["acc"] for k in keys)
    s = nats.summary("16:16:16:16:64")
    assert s["acc"] == 89.58 and s["regret"] == pytest.approx(best["acc"] - 89.58) and s["num_archs"] == 32768
    ev = nats.evaluate([(64, 64, 64, 64, 64)])[0]
    assert ev["score"] == ev["acc"] == nats.query("64:64:64:64:64")["acc"]


def test_nats_space_round_trip_and_sampling():
    space = SPACES.build("nats_sss")
    assert isinstance(space, NATSSizeSpace) and space.num_genes == 5 and len(space) == 8 ** 5
    for arch in space:
        key = space.encode(arch)
        assert space.decode(key) == arch and space.encode(key) == key
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = space.sample(rng)
        assert all(c in CHANNELS for c in a)
        assert space.validate(space.mutate(a, 0.5, rng)) and space.validate(space.crossover(a, space.sample(rng), rng))


@pytest.mark.parametrize("bad", ["16:16:16:16", "16:16:16:16:16:16", "16:16:16:16:65", "16:16:16:16:0",
                                 "a:16:16:16:16", "16-16-16-16-16", "16:16: 16:16:16", ""])
def test_nats_bad_keys(bad):
    with pytest.raises(ArchError) as e:
        NATSSizeSpace().decode(bad)
    assert repr(bad) in str(e.value)


def test_nats_bad_tuples_and_cost_model():
    space = NATSSizeSpace()
    with pytest.raises(ArchError, match="gene 2"):
        space.validate((8, 16, 20, 32, 64))
    with pytest.raises(ArchError):
        space.decode(16)
    with pytest.raises(ArchError, match="variant"):
        NATSSizeSpace("imagenet16_120")
    c100 = NATSSizeSpace("cifar100")
    assert c100.num_classes == 100 and c100.benchmark is None and space.benchmark == "nats_sss/cifar10"
    # closed-form costs (tests/test_bossnas_spaces.py checks them against built networks)
    assert space.flops((8, 8, 8, 8, 8)) < space.flops((64, 64, 64, 64, 64))
    assert c100.params((8,) * 5) - space.params((8,) * 5) == 90 * 8 + 90
    with pytest.raises(ArchError):
        space.flops((8, 8, 8, 8, 9))


def test_nats_missing_file_is_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("NASBENCH_MIRROR", raising=False)
    monkeypatch.setattr("nasbench.data.files._download", lambda url, dst: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(DataNotFoundError) as e:
        load_nats_sss("cifar10", tmp_path)
    assert "nats_cifar10_acc_rank.yml" in str(e.value)
    with pytest.raises(NasbenchError, match="unknown variant"):
        load_nats_sss("imagenet", tmp_path)


def test_nats_incomplete_file_rejected(tmp_path):
    (tmp_path / "nats_sss").mkdir()
    (tmp_path / NATS_REL).write_text("'8:8:8:8:8': 80.0\n")
    with pytest.raises(NasbenchError, match="1 architectures, expected 32768"):
        load_nats_sss("cifar10", tmp_path)
    (tmp_path / NATS_REL).write_text("'8:8:8:8:08': 80.0\n")
    with pytest.raises(NasbenchError, match="not canonical"):
        load_nats_sss("cifar10", tmp_path)


# ---------------------------------------------------------------------------- NB201
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"


def test_nb201_distinct_archs_and_records(nb201, nb201_raw):
    keys = list(nb201)
    assert len(keys) == 15625 == len(nb201.space) and len(set(keys)) == 15625
    assert set(keys) == {nb201.space.encode(a) for a in nb201.space}
    for k in keys[:200]:
        r = nb201.query(k)
        item = nb201_raw[r["index"]]
        assert r["acc"] == item["Acc"] and r["flops_m"] == item["Flops"] and r["params_m"] == item["Params"]
        assert r["flops"] == int(round(item["Flops"] * 1e6)) and r["params"] == int(round(item["Params"] * 1e6))


def test_nb201_one_hot_round_trip(nb201, nb201_raw):
    space = nb201.space
    for k in nb201:
        emb = nb201_raw[nb201.query(k)["index"]]["embedding"]
        arch = space.decode(k)
        v = space.one_hot(arch)
        assert v.dtype == np.float32 and v.shape == (30,)
        assert np.array_equal(v, emb)
        assert space.from_one_hot(v) == arch


def test_nb201_string_round_trip():
    space = NASBench201Space()
    assert space.decode(RESNET) == (3, 0, 3, 1, 0, 0)
    assert space.decode(f"Structure(4 nodes with {RESNET})") == (3, 0, 3, 1, 0, 0)
    for arch in space:
        key = space.encode(arch)
        assert space.decode(key) == arch and space.encode(key) == key
    assert space.encode((0, 1, 2, 3, 4, 0)) == \
        "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"


def test_nb201_from_one_hot_projects_noise():
    space = NASBench201Space()
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = space.sample(rng)
        noisy = space.one_hot(arch) + rng.uniform(-0.45, 0.45, 30)
        assert space.from_one_hot(noisy) == arch  # margin 1 > 2 * 0.45
        proj = space.from_one_hot(rng.normal(0, 3, 30))
        assert space.validate(proj) == proj
    assert space.from_one_hot(np.zeros(30)) == space.from_one_hot(np.zeros(30)) and \
        space.validate(space.from_one_hot(np.zeros(30)))
    for bad in (np.zeros(29), np.full(30, np.nan), np.zeros((6, 6))):
        with pytest.raises(ArchError):
            space.from_one_hot(bad)


def test_nb201_best_is_imagenet16_120(nb201):
    key, best = nb201.best()
    assert best["acc"] == pytest.approx(47.33, abs=0.01)
    assert key == "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert nb201.rank(key) == 1 and nb201.regret(key) == 0.0
    assert min(nb201.query(k)["acc"] for k in nb201) == pytest.approx(100 / 120, abs=1e-4)  # 120-class chance
    k, r = nb201.best(max_flops=50e6)
    assert r["flops"] <= 50e6 and all(nb201.query(x)["acc"] <= r["acc"] for x in nb201
                                      if nb201.query(x)["flops"] <= 50e6)


# -- the embedding's op / edge order (see nasbench/spaces/nas_bench_201.py) -------------------
def test_nb201_cost_identifies_conv_ops(nb201):
    """Analytic cost of the CIFAR-100 NB201 network = NCP's Flops/Params except 150 records (one conv off)."""
    space = nb201.space
    off = []
    for k in nb201:
        r = nb201.query(k)
        f, p = space.flops(k), space.params(k)
        if abs(f - r["flops"]) > 5000 or abs(p - r["params"]) > 500:
            off.append((k, f - r["flops"]))
    assert len(off) == 150
    base = space.flops((0,) * 6)
    conv1, conv3 = (space.flops((OPS.index(o),) + (0,) * 5) - base for o in ("nor_conv_1x1", "nor_conv_3x3"))
    assert (conv1, conv3) == (3_932_160, 35_389_440)
    assert all(min(abs(abs(d) - conv1), abs(abs(d) - conv3)) < 5000 for _, d in off)
    assert space.flops((0,) * 6) == 7_788_800 and space.params((0,) * 6) == 79_156
    assert NASBench201Space(input_size=16, num_classes=120).params((0,) * 6) == 80_456


def _disconnected(arch):
    """Cell output identically zero (every path input -> node 3 passes a 'none' edge)."""
    op = dict(zip([(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)], arch))
    zero = {0: False}
    for i in (1, 2, 3):
        zero[i] = all(op[(i, j)] == OPS.index("none") or zero[j] for j in range(i))
    return zero[3]


def test_nb201_none_and_edge_order_from_chance_accuracy(nb201):
    chance = {k for k in nb201 if abs(nb201.query(k)["acc"] - 100 / 120) < 1e-3}
    predicted = {nb201.space.encode(a) for a in nb201.space if _disconnected(a)}
    assert len(predicted) == 341 and len(chance ^ predicted) <= 4


# ImageNet16-120 val_accuracy of 9 cells in NASLib's naslib/data/zc_nasbench201.json (automl/NASLib),
# converted from NASLib op indices with naslib/search_spaces/nasbench201/conversions.py.
NASLIB_IMAGENET = {
    "|skip_connect~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|": 37.0333,
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|": 21.9667,
    "|none~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|skip_connect~2|": 42.1333,
    "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|skip_connect~2|": 38.1333,
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|avg_pool_3x3~0|skip_connect~1|skip_connect~2|": 31.7667,
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|nor_conv_3x3~1|none~2|": 37.9,
    "|none~0|+|nor_conv_3x3~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_1x1~2|": 39.1333,
    "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|none~0|nor_conv_1x1~1|nor_conv_1x1~2|": 34.2,
    "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|none~2|": 26.8,
}


def _matches(nb201, swap_skip_pool=False, mirror=False):
    space, n = nb201.space, 0
    s, p = OPS.index("skip_connect"), OPS.index("avg_pool_3x3")
    for key, acc in NASLIB_IMAGENET.items():
        a = list(space.decode(key))
        if swap_skip_pool:
            a = [p if g == s else s if g == p else g for g in a]
        if mirror:  # input/output mirror image of the DAG
            a = [a[5], a[4], a[2], a[3], a[1], a[0]]
        n += abs(nb201.query(tuple(a))["acc"] - acc) < 1e-3
    return n


def test_nb201_skip_pool_and_direction_from_naslib(nb201):
    assert _matches(nb201) >= 5
    assert _matches(nb201, swap_skip_pool=True) == _matches(nb201, mirror=True) == 0
    assert _matches(nb201, swap_skip_pool=True, mirror=True) == 0
    assert EMBED_OPS == ("avg_pool_3x3", "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")


@pytest.mark.parametrize("bad", [
    "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|",  # 2 nodes
    "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|",  # node 3 has 2 edges
    "|conv_5x5~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",  # unknown op
    "|nor_conv_3x3~1|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",  # wrong source
    "|nor_conv_3x3|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",  # no ~j
    "nor_conv_3x3~0+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",  # missing pipes
    "3-0-3-1-0-0", "",
])
def test_nb201_bad_keys(bad):
    with pytest.raises(ArchError) as e:
        NASBench201Space().decode(bad)
    assert repr(bad) in str(e.value)


def test_nb201_bad_tuples_and_query(nb201):
    with pytest.raises(ArchError, match="gene 5"):
        nb201.space.validate((0, 1, 2, 3, 4, 5))
    with pytest.raises(ArchError):
        nb201.query((0, 1, 2))
    with pytest.raises(ArchError):
        NASBench201Space().decode(None)
    assert SPACES.get("nas_bench_201") is NASBench201Space


def test_nb201_rejects_unsafe_or_bad_pickle(tmp_path):
    (tmp_path / "nas_bench_201").mkdir()
    import collections
    (tmp_path / NB201_REL).write_bytes(pickle.dumps([collections.Counter()]))
    with pytest.raises(NasbenchError, match="refusing to unpickle"):
        load_nas_bench_201("imagenet16_120", tmp_path)
    emb = np.zeros(30, dtype=np.float32)
    emb[[0, 5, 10, 15, 20, 26]] = 1
    emb[27] = 1  # two ops on the last edge
    (tmp_path / NB201_REL).write_bytes(pickle.dumps([{"embedding": emb, "Acc": 1.0, "Flops": 1.0, "Params": 1.0}]))
    with pytest.raises(NasbenchError, match="not one-hot"):
        load_nas_bench_201("imagenet16_120", tmp_path)
    emb[27] = 0
    rec = {"embedding": emb, "Acc": 1.0, "Flops": 1.0, "Params": 1.0}
    (tmp_path / NB201_REL).write_bytes(pickle.dumps([rec, dict(rec)]))
    with pytest.raises(NasbenchError, match="same cell"):
        load_nas_bench_201("imagenet16_120", tmp_path)
    (tmp_path / NB201_REL).write_bytes(pickle.dumps([rec]))
    with pytest.raises(NasbenchError, match="1 architectures, expected 15625"):
        load_nas_bench_201("imagenet16_120", tmp_path)
    with pytest.raises(NasbenchError, match="unknown variant"):
        load_nas_bench_201("cifar10", tmp_path)
