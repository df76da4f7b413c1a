"""Tests of nasbench.config: inheritance, strict keys, opts, dump/load."""
import copy
import pickle

import pytest
import yaml

from nasbench.config import Config, dump_config, load_config
from nasbench.errors import ConfigError


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_fill_every_key(tmp_path):
    cfg = load_config(write(tmp_path / "a.yaml", "seed: 3\n"))
    assert cfg.seed == 3
    assert cfg.train.lr == 0.1 and cfg.data.val_size == 5000
    assert cfg.space == {"type": "channel_bench_macro", "variant": "mobilenet", "bins": 4, "min_bins": 0}
    assert isinstance(cfg.train, Config)


def test_base_two_levels_with_override(tmp_path):
    write(tmp_path / "base" / "root.yaml", "train:\n  lr: 0.5\n  epochs: 5\nseed: 1\n")
    write(tmp_path / "base" / "mid.yaml", "_base_: root.yaml\ntrain:\n  epochs: 7\ndata:\n  root: /m\n")
    leaf = write(tmp_path / "leaf.yaml", "_base_: base/mid.yaml\ntrain:\n  lr: 0.2\n")
    cfg = load_config(leaf)
    assert cfg.train.lr == 0.2          # leaf overrides root
    assert cfg.train.epochs == 7        # mid overrides root, kept by leaf
    assert cfg.seed == 1                # root survives two levels
    assert cfg.data.root == "/m"
    assert cfg.train.momentum == 0.9    # defaults underneath
    assert "_base_" not in cfg


def test_list_base_merged_in_order(tmp_path):
    write(tmp_path / "a.yaml", "seed: 1\ntrain:\n  lr: 0.3\n")
    write(tmp_path / "b.yaml", "seed: 2\ntrain:\n  epochs: 9\n")
    cfg = load_config(write(tmp_path / "c.yaml", "_base_: [a.yaml, b.yaml]\n"))
    assert cfg.seed == 2                # later base wins
    assert cfg.train.lr == 0.3 and cfg.train.epochs == 9


def test_delete_replaces_inherited_dict(tmp_path):
    write(tmp_path / "a.yaml", "train:\n  epochs: 5\n  lr: 0.5\n")
    merged = load_config(write(tmp_path / "b.yaml", "_base_: a.yaml\ntrain:\n  lr: 0.3\n"))
    assert (merged.train.epochs, merged.train.lr) == (5, 0.3)
    replaced = load_config(write(tmp_path / "c.yaml", "_base_: a.yaml\ntrain:\n  _delete_: true\n  lr: 0.3\n"))
    assert (replaced.train.epochs, replaced.train.lr) == (60, 0.3)  # epochs back to the default


def test_opts_override_and_parse_types(tmp_path):
    path = write(tmp_path / "a.yaml", "train:\n  lr: 0.5\n")
    cfg = load_config(path, ["train.lr=0.01", "search.prior=false", "data.root=/x",
                             "train.epochs=3", "space.bins=4.0", "train.clip_grad=5"])
    assert cfg.train.lr == 0.01 and isinstance(cfg.train.lr, float)
    assert cfg.search.prior is False
    assert cfg.data.root == "/x"
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.space.bins == 4
    assert cfg.train.clip_grad == 5


def test_opts_without_equals_is_error(tmp_path):
    path = write(tmp_path / "a.yaml", "")
    with pytest.raises(ConfigError, match="train.lr"):
        load_config(path, ["train.lr"])


def test_unknown_key_in_base_names_base_file(tmp_path):
    base = write(tmp_path / "base.yaml", "train:\n  lrr: 0.1\n")
    leaf = write(tmp_path / "leaf.yaml", "_base_: base.yaml\n")
    with pytest.raises(ConfigError) as e:
        load_config(leaf)
    msg = str(e.value)
    assert "'train.lrr'" in msg and str(base) in msg and "leaf.yaml" not in msg
    assert "did you mean 'train.lr'?" in msg


def test_unknown_key_via_opts_with_suggestion(tmp_path):
    path = write(tmp_path / "a.yaml", "")
    with pytest.raises(ConfigError) as e:
        load_config(path, ["search.populaton=10"])
    msg = str(e.value)
    assert "'search.populaton'" in msg and "--opts" in msg
    assert "did you mean 'search.population'?" in msg


def test_unknown_key_without_close_match_has_no_suggestion(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path / "a.yaml", "zzzqqq: 1\n"))
    assert "'zzzqqq'" in str(e.value) and "did you mean" not in str(e.value)


@pytest.mark.parametrize("text,key,expected,given", [
    ("train:\n  lr: fast\n", "train.lr", "float", "str"),
    ("train:\n  epochs: 2.5\n", "train.epochs", "int", "float"),
    ("search:\n  prior: 1\n", "search.prior", "bool", "int"),
    ("train: 3\n", "train", "dict", "int"),
])
def test_type_mismatch(tmp_path, text, key, expected, given):
    path = write(tmp_path / "a.yaml", text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert f"'{key}'" in msg and str(path) in msg
    assert f"expected {expected}" in msg and f"got {given}" in msg


def test_type_coercions_accepted(tmp_path):
    cfg = load_config(write(tmp_path / "a.yaml",
                            "train:\n  lr: 1\n  epochs: 4.0\n  max_steps: 10\ndata:\n  root: null\n"))
    assert cfg.train.lr == 1                               # int for float
    assert cfg.train.epochs == 4 and isinstance(cfg.train.epochs, int)  # integral float for int
    assert cfg.train.max_steps == 10                       # null default takes anything
    assert cfg.data.root is None                           # null always accepted


def test_base_cycle(tmp_path):
    write(tmp_path / "a.yaml", "_base_: b.yaml\n")
    write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle") as e:
        load_config(tmp_path / "a.yaml")
    assert "a.yaml" in str(e.value) and "b.yaml" in str(e.value)


def test_missing_file_and_missing_base(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    leaf = write(tmp_path / "leaf.yaml", "_base_: gone.yaml\n")
    with pytest.raises(ConfigError) as e:
        load_config(leaf)
    assert "gone.yaml" in str(e.value) and str(leaf) in str(e.value)


def test_bad_yaml_and_non_mapping(tmp_path):
    bad = write(tmp_path / "bad.yaml", "train: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)
    lst = write(tmp_path / "list.yaml", "- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml.*mapping"):
        load_config(lst)


def test_dump_load_round_trip(tmp_path):
    cfg = load_config(write(tmp_path / "a.yaml", "space:\n  type: bnas_v2\n  init_channels: 8\n"),
                      ["train.lr=0.03", "data.root=/d"])
    out = tmp_path / "out" / "resolved.yaml"
    dump_config(cfg, out)
    assert [p.name for p in out.parent.iterdir()] == ["resolved.yaml"]   # no temp file left
    raw = yaml.safe_load(out.read_text())
    assert list(raw)[:3] == ["seed", "device", "deterministic"]        # not sorted
    again = load_config(out)
    assert again == cfg and again.to_dict() == cfg.to_dict()


def test_config_attribute_access_and_plain_copies():
    cfg = Config({"a": {"b": 1}, "l": [1]})
    assert cfg.a.b == 1 and cfg["a"]["b"] == 1
    cfg.a.c = {"d": 2}
    assert isinstance(cfg.a.c, Config) and cfg.a.c.d == 2
    with pytest.raises(AttributeError):
        cfg.missing
    plain = cfg.to_dict()
    assert type(plain) is dict and type(plain["a"]) is dict and type(plain["a"]["c"]) is dict
    for clone in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg)):
        assert clone == cfg and isinstance(clone.a, Config)
        clone.a.b = 5
        assert cfg.a.b == 1


def test_misplaced_key_suggests_full_path(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path / "a.yaml", "population: 10\n"))
    assert "did you mean 'search.population'?" in str(e.value)


# ----------------------------------------------------------------------------- typed sections
def test_key_of_another_type_is_rejected_naming_type_file_and_closest(tmp_path):
    """``sandwich`` is AutoSlim's key; under ``type: bcnet`` it used to be ignored silently."""
    path = write(tmp_path / "a.yaml", "algorithm:\n  type: bcnet\n  sandwich: true\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert "'algorithm.sandwich'" in msg and "algorithm.type bcnet" in msg and str(path) in msg


def test_misspelled_key_names_the_file_that_set_it(tmp_path):
    base = write(tmp_path / "base.yaml", "search:\n  type: evolution\n  popluation: 3\n")
    leaf = write(tmp_path / "leaf.yaml", "_base_: base.yaml\nseed: 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(leaf)
    assert str(base) in str(e.value) and "did you mean 'search.population'?" in str(e.value)


def test_resolved_sections_hold_exactly_the_keys_of_their_type(tmp_path):
    from nasbench.registry import ALGORITHMS, SEARCHERS
    cfg = load_config(write(tmp_path / "a.yaml", "algorithm:\n  type: autoslim\nsearch:\n  type: nsga2\n"))
    assert set(cfg.algorithm) == {"type"} | set(ALGORITHMS.keys_of("autoslim"))
    assert set(cfg.search) == {"type", "flops_budget", "flops_min_ratio", "max_seconds"} | set(SEARCHERS.keys_of("nsga2"))
    assert cfg.eval.type == "accuracy"  # auto -> the algorithm's default evaluator


def test_changing_type_drops_only_the_keys_that_do_not_apply(tmp_path):
    write(tmp_path / "a.yaml", "search:\n  type: evolution\n  population: 7\n  topk: 2\n  flops_budget: 1000000\n")
    cfg = load_config(write(tmp_path / "b.yaml", "_base_: a.yaml\nsearch:\n  type: nsga2\n"))
    assert cfg.search.population == 7 and "topk" not in cfg.search and cfg.search.flops_budget == 1e6
    cfg = load_config(tmp_path / "a.yaml", ["search.type=ea"])
    assert cfg.search.type == "evolution" and cfg.search.topk == 2  # alias, same type: nothing dropped


@pytest.mark.parametrize("text,needle", [
    ("search:\n  type: random\n  num_queries: 0\n", r"must lie in \[1, inf\]"),
    ("search:\n  type: evolution\n  mutation_prob: 1.5\n", r"must lie in \[0, 1\]"),
    ("algorithm:\n  type: autoslim\n  num_paths: two\n", "expected int"),
    ("algorithm:\n  type: annealing\n", "unknown algorithm type 'annealing'"),
])
def test_declared_ranges_and_types_are_checked(tmp_path, text, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config(write(tmp_path / "a.yaml", text))


def test_every_registered_type_rejects_a_misspelled_key(tmp_path):
    """For every algorithm, searcher and evaluator with keys: its first key misspelled is an error
    that names the type and suggests the real key."""
    from nasbench.registry import TYPED_SECTIONS, load_registrations
    load_registrations()
    checked = 0
    for sec in ("algorithm", "search", "eval"):
        reg = TYPED_SECTIONS[sec]
        for name in reg.names():
            keys = sorted(reg.keys_of(name))
            if not keys:
                bogus = "definitely_not_a_key"
            else:
                bogus = keys[0][:-1] + ("x" if keys[0][-1] != "x" else "y")
            opts = [f"{sec}.type={name}", f"{sec}.{bogus}=1"]
            if sec == "eval":
                opts = ["space.type=nas_bench_macro", "algorithm.type=spos"] + opts
            with pytest.raises(ConfigError) as e:
                load_config(write(tmp_path / "a.yaml", ""), opts)
            assert f"'{sec}.{bogus}'" in str(e.value) and f"{sec}.type {name}" in str(e.value)
            if keys:
                assert f"did you mean '{sec}.{keys[0]}'?" in str(e.value)
            checked += 1
    assert checked >= 6 + 5 + 3


def test_type_set_only_by_opts_drops_the_files_keys_of_the_default_type(tmp_path):
    """A file that sets accuracy-evaluator keys without a type, then --opts eval.type=bn_indicator."""
    path = write(tmp_path / "a.yaml", "space:\n  type: nas_bench_macro\nalgorithm:\n  type: spos\n"
                                      "eval:\n  recal_batches: 2\n")
    assert load_config(path).eval == {"type": "accuracy", "recal_batches": 2, "recal_batch_size": 256,
                                      "val_batches": None}
    assert load_config(path, ["eval.type=bn_indicator"]).eval == {"type": "bn_indicator"}
