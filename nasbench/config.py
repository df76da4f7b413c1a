"""YAML experiment configs with inheritance, strict keys and command-line overrides.

Format
------
A config file is a YAML mapping. Resolution of ``load_config(path, opts)``:

1. ``_base_`` (top level only; a path or a list of paths, relative to the file
   that names it) is loaded first, recursively, the bases merged in order; then
   the file's own keys are merged on top. Cycles are a :class:`ConfigError`.
2. Merging: mappings merge recursively, any other value (lists too) replaces.
   A mapping containing ``_delete_: true`` replaces the inherited mapping
   instead of merging (mmcv convention).
3. ``opts`` (``["train.lr=0.1", "search.prior=false"]``; each value parsed with
   ``yaml.safe_load``) are merged on top of the file.
4. Everything is merged over ``config_defaults.yaml`` (next to this module), so
   every key always exists.

The defaults file is also the schema: every key must exist there, except below
a key whose default is an empty mapping ``{}`` (free-form), and except in the
*typed sections* ``space``, ``algorithm``, ``search`` and ``eval``
(:data:`nasbench.registry.TYPED_SECTIONS`): there the defaults file holds only
the keys common to every type (``type`` itself, ``search.flops_budget``, ...),
and the other keys are those the registered class of the chosen ``type``
declares (:class:`nasbench.registry.Key`: default, doc, type, range, unit).
A key that does not apply to the chosen type is an error naming the type, the
file that set it and the closest valid key; the resolved config holds exactly
the keys that apply. When a file or ``--opts`` changes a typed section's
``type``, the keys it inherited that the new type does not declare are dropped
(common keys and keys both types declare, such as ``search.population``, stay). ``eval.type: auto`` resolves to the algorithm's ``default_evaluator``.
A value whose type contradicts a non-null default is rejected (an int is
accepted for a float; an integral float for an int; null always).
"""
import copy
import difflib
import os
import tempfile

import yaml

from nasbench.errors import ConfigError

DEFAULTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config_defaults.yaml")
_DEFAULTS = None


class Config(dict):
    """A dict with attribute access (``cfg.train.lr``); nested dicts become Configs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for k, v in self.items():
            if isinstance(v, dict) and not isinstance(v, Config):
                super().__setitem__(k, Config(v))

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setitem__(self, key, value):
        if isinstance(value, dict) and not isinstance(value, Config):
            value = Config(value)
        super().__setitem__(key, value)

    def __reduce__(self):  # pickle/deepcopy as a plain dict, rebuilt as Config
        return (Config, (self.to_dict(),))

    def to_dict(self):
        """Return the config as plain nested dicts/lists (a deep copy)."""
        return _plain(self)


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return copy.deepcopy(x)


def _read_yaml(path, referrer=None):
    where = f" (named in _base_ of {referrer})" if referrer else ""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}{where}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}{where}: {e}") from None
    except yaml.constructor.ConstructorError as e:  # e.g. !!python/object/apply: nothing is constructed
        raise ConfigError(f"refusing to load config file {path}: {_yaml_where(e)} {e.problem} "
                          "(configs are plain YAML; python tags are not accepted)") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"YAML syntax error in {path}: {_yaml_where(e)} {getattr(e, 'problem', None) or e}"
                          .replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must contain a mapping at top level, "
                          f"got {type(data).__name__}")
    return data


def _yaml_where(e) -> str:
    """``line L, column C:`` of a YAML error (1-based), or ``""``."""
    mark = getattr(e, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""


def _defaults():
    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = _read_yaml(DEFAULTS_PATH)
    return copy.deepcopy(_DEFAULTS)


def _dotted_keys(schema, prefix=""):
    for k, v in schema.items():
        yield prefix + str(k)
        if isinstance(v, dict):
            yield from _dotted_keys(v, f"{prefix}{k}.")


def _type_error(value, default):
    """Return the expected type name if ``value`` is incompatible with ``default``."""
    if value is None or default is None:
        return None
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, (str, list, dict)):
        ok = isinstance(value, type(default))
    else:
        return None
    return None if ok else type(default).__name__


#: Type, range, allowed values and unit of the keys of the fixed (untyped) sections;
#: the defaults and meanings are in ``config_defaults.yaml`` beside each key. Every
#: config (every tool, every algorithm) is checked against these after merging, so a
#: value out of range is a :class:`ConfigError` naming the key, the file that set it
#: and the allowed range before anything is built or written. ``{"range": (lo, hi)}``
#: is inclusive; ``type`` is needed only where the default is null.
_SCHEDULES = ("cosine", "linear", "step")
_AMPS = ("none", "fp32", "no", "bf16", "fp16")
_TRAIN_RULES = {
    "epochs": dict(range=(1, None), unit="epochs"),
    "max_steps": dict(type=int, range=(1, None), unit="steps"),
    "lr": dict(range=(0, None)), "min_lr": dict(range=(0, None)),
    "warmup_epochs": dict(type=float, range=(0, None), unit="epochs"), "warmup_lr": dict(range=(0, None)),
    "schedule": dict(choices=_SCHEDULES),
    "decay_epochs": dict(type=float, range=(0.01, None), unit="epochs"), "decay_rate": dict(type=float, range=(0, 1)),
    "optimizer": dict(choices=("sgd", "adamw")),
    "momentum": dict(range=(0, 1)), "weight_decay": dict(range=(0, None)),
    "label_smoothing": dict(range=(0, 1)),
    "clip_grad": dict(type=float, range=(0, None)), "clip_mode": dict(choices=("norm", "value")),
    "ema": dict(type=float, range=(0, 1)), "drop_path": dict(range=(0, 1)),
    "amp": dict(choices=_AMPS),
    "log_interval": dict(range=(1, None), unit="steps"), "ckpt_interval": dict(range=(0, None), unit="steps"),  # 0: at epoch ends only
}
FIXED_RULES = {
    "seed": dict(range=(0, None)),
    "data.name": dict(choices=("cifar10", "imagefolder")),
    "data.format": dict(choices=("auto", "imagefolder", "torchvision")),
    "data.image_size": dict(range=(1, None), unit="pixels"),
    "data.num_classes": dict(range=(1, None), unit="classes"),
    "data.val_size": dict(range=(0, None), unit="images"),
    "data.train_size": dict(type=int, range=(1, None), unit="images"),
    "data.test_size": dict(type=int, range=(1, None), unit="images"),
    "data.split_seed": dict(range=(0, None)),
    "data.batch_size": dict(range=(1, None), unit="images"),
    "data.eval_batch_size": dict(range=(1, None), unit="images"),
    "data.num_workers": dict(range=(0, None), unit="processes"),
    **{f"train.{k}": v for k, v in _TRAIN_RULES.items()},
    **{f"retrain.{k}": v for k, v in _TRAIN_RULES.items()},
    "retrain.auxiliary_weight": dict(range=(0, None)),
    "retrain.mixup": dict(type=float, range=(0, None)), "retrain.cutmix": dict(type=float, range=(0, None)),
    "retrain.mixup_prob": dict(type=float, range=(0, 1)), "retrain.mixup_switch_prob": dict(type=float, range=(0, 1)),
    "search.flops_budget": dict(type=float, range=(0, None), unit="MACs"),
    "search.flops_min_ratio": dict(range=(0, 1)),
    "search.max_seconds": dict(type=float, range=(0, None), unit="seconds"),
    "rank_eval.num_archs": dict(range=(2, None), unit="count"),
    "rank_eval.flops_bands": dict(range=(1, None), unit="count"),
    "rank_eval.track_interval": dict(type=int, range=(1, None), unit="steps"),
    "predictor.epochs": dict(range=(1, None), unit="epochs"),
    "predictor.batch_size": dict(range=(1, None), unit="architectures"),
    "predictor.lr": dict(range=(0, None)), "predictor.weight_decay": dict(range=(0, None)),
    "predictor.val_fraction": dict(range=(0, 0.99)),
    "predictor.seed": dict(range=(0, None)),
    "predictor.hidden": dict(range=(1, None)), "predictor.head_hidden": dict(range=(1, None)),
    "ncp.iterations": dict(range=(1, None), unit="steps"),
    "ncp.lr": dict(range=(0, None)), "ncp.delta": dict(range=(0, None)),
    "ncp.flops_lambda": dict(range=(0, None)),
    "ncp.max_flops": dict(type=float, range=(0, None)),
}


def _check_fixed(cfg: dict, prov: dict, default_source: str) -> None:
    """Check every key of :data:`FIXED_RULES` in the merged ``cfg`` (in place: integral
    floats become ints). Raises :class:`ConfigError` naming the key, its file and the range."""
    from .registry import Key
    defaults = _defaults()
    for dotted, rule in FIXED_RULES.items():
        *parents, leaf = dotted.split(".")
        node, dnode = cfg, defaults
        for p in parents:
            node, dnode = node.get(p), dnode.get(p, {})
        if not isinstance(node, dict) or leaf not in node:
            continue
        key = Key(dnode.get(leaf), "", **rule)
        node[leaf] = key.check(node[leaf], f"config key '{dotted}' in {prov.get(dotted, default_source)}")


def _typed_keys() -> list:
    """``section.key`` of every key any registered type of a typed section declares (for hints)."""
    from .registry import TYPED_SECTIONS, load_registrations
    load_registrations()
    return sorted({f"{sec}.{k}" for sec, reg in TYPED_SECTIONS.items() for n in reg.names()
                   for k in reg.keys_of(n)})


def _typed(prefix, key=None):
    """True for a key inside a typed section (checked against its type's keys later)."""
    from .registry import TYPED_SECTIONS
    return prefix.count(".") == 1 and prefix[:-1] in TYPED_SECTIONS


def _check(data, schema, source, prefix="", full_schema=None):
    """Raise ConfigError for keys of ``data`` missing from ``schema`` or of the wrong type."""
    full_schema = schema if full_schema is None else full_schema
    for key, value in data.items():
        dotted = prefix + str(key)
        if key == "_delete_" and prefix:
            continue
        if key not in schema and _typed(prefix):
            continue  # a type-specific key: resolve_typed_sections checks it
        if key not in schema:
            close = [prefix + c for c in difflib.get_close_matches(str(key), map(str, schema), n=1)]
            every = list(_dotted_keys(full_schema)) + _typed_keys()
            close = close or difflib.get_close_matches(dotted, every, n=1)
            close = close or [k for k in every if k.endswith("." + str(key))][:2]
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"unknown config key {dotted!r} in {source}{hint}")
        default = schema[key]
        expected = _type_error(value, default)
        if expected:
            raise ConfigError(f"config key {dotted!r} in {source}: expected {expected}, "
                              f"got {type(value).__name__} ({value!r})")
        if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
            data[key] = int(value)
        if isinstance(default, dict) and default and isinstance(value, dict):
            _check(value, default, source, dotted + ".", full_schema)


def _merge(base, override, top=True):
    """Merge ``override`` into a copy of ``base`` (see the module docstring)."""
    from .registry import TYPED_SECTIONS
    out = dict(base)
    for k, v in override.items():
        old = out.get(k)
        if (top and k in TYPED_SECTIONS and isinstance(v, dict) and isinstance(old, dict) and "type" in v
                and v["type"] != old.get("type", _defaults().get(k, {}).get("type"))):
            # a new type: inherited keys stay only where they apply to it (common or declared keys)
            keep = set(_defaults().get(k, {}))
            try:
                from .registry import load_registrations
                load_registrations()
                keep |= set(TYPED_SECTIONS[k].keys_of(v["type"]))
            except ConfigError:
                pass  # an unknown type is reported when the section is resolved
            out[k] = {key: val for key, val in old.items() if key in keep}
        if isinstance(v, dict) and not v.get("_delete_") and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v, top=False)
        else:
            out[k] = _strip_delete(v)
    return out


def _strip_delete(v):
    if isinstance(v, dict):
        return {k: _strip_delete(x) for k, x in v.items() if k != "_delete_"}
    return copy.deepcopy(v)


def _record(prov, data, source):
    """Remember which file set each key (``section.key`` or a top-level key), for error messages."""
    for sec, value in data.items():
        prov[str(sec)] = source
        if isinstance(value, dict):
            for key in value:
                prov[f"{sec}.{key}"] = source


def _load_file(path, schema, stack, referrer=None, prov=None):
    real = os.path.realpath(path)
    if real in stack:
        chain = " -> ".join(stack[stack.index(real):] + [real])
        raise ConfigError(f"cycle in _base_ chain: {chain}")
    data = _read_yaml(path, referrer)
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"_base_ in {path} must be a path or a list of paths, got {bases!r}")
    _check(data, schema, path)
    merged = {}
    for b in bases:
        b = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.expanduser(b))
        merged = _merge(merged, _load_file(b, schema, stack + [real], path, prov))
    if prov is not None:
        _record(prov, data, path)
    return _merge(merged, data)


def parse_opts(opts):
    """Turn ``["a.b=1", ...]`` into a nested dict; values parsed by ``yaml.safe_load``.

    A value that is not valid YAML is kept as the raw string.
    Raises ConfigError for an item without ``=`` or with an empty key.
    """
    out = {}
    for item in opts or []:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key or any(not p for p in key.split(".")):
            raise ConfigError(f"bad --opts item {item!r}: expected key.sub=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[leaf] = value
    return out


def load_config(path, opts=None):
    """Load ``path`` with its ``_base_`` chain, apply ``opts``, fill in defaults.

    Returns a :class:`Config`. Raises ConfigError for a missing/unreadable file,
    YAML syntax error, non-mapping top level, bad ``_base_``, ``_base_`` cycle,
    unknown key (with a did-you-mean hint), value of the wrong type, a value
    outside its range or allowed values (:data:`FIXED_RULES`, the typed sections'
    :class:`~nasbench.registry.Key` declarations), or a malformed ``opts`` item.
    """
    schema = _defaults()
    prov: dict = {}
    data = _load_file(os.fspath(path), schema, [], prov=prov)
    overrides = parse_opts(opts)
    _check(overrides, schema, "--opts")
    _record(prov, overrides, "--opts")
    cfg = _merge(schema, _merge(data, overrides))
    _check_fixed(cfg, prov, os.fspath(path))
    resolve_typed_sections(cfg, prov, default_source=os.fspath(path))
    return Config(cfg)


def resolve_section(sec: str, section, prov: dict | None = None, default_source: str = "the config",
                    auto_type: str | None = None) -> dict:
    """One typed section (``space``, ``algorithm``, ``search``, ``eval``) checked and completed.

    Resolves ``type`` (aliases; ``auto`` -> ``auto_type``), rejects keys the type
    does not declare (naming the type, the file that set the key from ``prov``
    and the closest valid key), checks each value against its
    :class:`~nasbench.registry.Key` and fills in the type's defaults. Keys common
    to every type of the section (those of ``config_defaults.yaml``) pass
    unchecked here (the file-level schema checks them).

    Returns:
        A new plain dict with ``type`` first.

    Raises:
        ConfigError: unknown type, a key that does not apply, or a bad value.
    """
    from .registry import TYPED_SECTIONS, load_registrations
    load_registrations()
    registry = TYPED_SECTIONS[sec]
    prov = prov or {}
    section = dict(section or {})
    kind = section.get("type")
    if kind in (None, "auto") and auto_type is not None:
        kind = auto_type
    try:
        kind = registry.canonical(kind)
    except ConfigError as e:
        raise ConfigError(f"{sec}.type in {prov.get(sec + '.type', default_source)}: {e}") from None
    common = _defaults().get(sec, {})
    keys = registry.keys_of(kind)
    out = {"type": kind}
    for name, value in section.items():
        if name == "type":
            continue
        source = prov.get(f"{sec}.{name}", default_source)
        if name in keys:
            out[name] = keys[name].check(value, f"config key '{sec}.{name}' in {source} ({sec}.type {kind})")
        elif name in common:
            out[name] = value
        else:
            valid = sorted((set(keys) | set(common)) - {"type"})
            close = difflib.get_close_matches(str(name), valid, n=1)
            hint = (f"; did you mean '{sec}.{close[0]}'?" if close
                    else f"; valid keys: {', '.join(valid) or 'none'}")
            raise ConfigError(f"config key '{sec}.{name}' in {source} does not apply to "
                              f"{sec}.type {kind}{hint}")
    for name, key in keys.items():
        out.setdefault(name, key.default)
    return out


def resolve_typed_sections(cfg: dict, prov: dict | None = None, default_source: str = "the config") -> dict:
    """Check and complete every typed section of a merged config dict, in place
    (:func:`resolve_section` for ``space``, ``algorithm``, ``eval``, ``search``;
    ``eval.type: auto`` resolves to the algorithm's ``default_evaluator``). Returns ``cfg``.

    Raises:
        ConfigError: unknown type, a key that does not apply, or a bad value.
    """
    from .registry import ALGORITHMS, TYPED_SECTIONS
    for sec in TYPED_SECTIONS:
        if not isinstance(cfg.get(sec), dict):
            continue
        auto = None
        if sec == "eval":
            auto = getattr(ALGORITHMS.get(cfg["algorithm"]["type"]), "default_evaluator", "accuracy")
        cfg[sec] = resolve_section(sec, cfg[sec], prov, default_source, auto_type=auto)
    return cfg



def dump_config(cfg, path):
    """Write ``cfg`` (a Config or dict) to ``path`` as YAML, atomically.

    The file is written to a temporary file in the same directory and moved
    into place with ``os.replace``. Raises OSError if the directory is not writable
    and yaml.representer.RepresenterError for values YAML cannot represent.
    """
    path = os.fspath(path)
    text = yaml.safe_dump(_plain(cfg), sort_keys=False, default_flow_style=False)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise

def section_defaults(name: str) -> dict:
    """A deep copy of section ``name`` of ``config_defaults.yaml`` (e.g. ``"train"``)."""
    return copy.deepcopy(_defaults()[name])
