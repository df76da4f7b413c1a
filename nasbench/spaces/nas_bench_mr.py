"""NAS-Bench-MR multi-resolution search space (NCP, Ding et al., ICLR 2022, arXiv 2103.13253).

An architecture is a *code* of 27 ints (METHODS.md 5.2)::

    [in0, in1,                       # stem channels (two stride-2 convs)
     n1, c1, w1,                     # block with 1 branch:  repeats, convs, channels
     n2, c2a, c2b, w2a, w2b,         # block with 2 branches
     n3, c3a..c3c, w3a..w3c,         # block with 3 branches
     n4, c4a..c4d, w4a..w4d,         # block with 4 branches
     last]                           # head channels

Counts (``n_b`` repeats, ``c`` BasicBlocks per branch) take values 1..4;
channels (``in0, in1, w``, ``last``) take multiples of 8 in 8..128 (16
values). These are the legal ranges of NCP's code editing (counts 1..4,
channels rounded to multiples of 8 up to 128); the shipped pickles use a
subset of them (e.g. stem channels only 8,16,24,32,48,64,96,128 / 72).

String key (the format of NCP's ``data/search_list.txt``): groups joined by
``-``, ints inside a group joined by ``_``; each branch group also carries its
branch count ``b`` after ``n_b``::

    in0_in1 - n1_1_c1_w1 - n2_2_c2a_c2b_w2a_w2b - n3_3_c..._w... - n4_4_c..._w... - last
    e.g. 32_16-1_1_1_32-3_2_3_2_16_32-1_3_1_1_1_112_48_32-2_4_4_3_4_2_32_64_32_112-128

Network setting (the pickle's ``input_channel`` / ``inverted_residual_setting``
/ ``last_channel``): block ``b`` becomes ``n_b`` copies of the entry
``[b, [c...], [w...]]`` in the order b = 1, 2, 3, 4.

``build`` returns the MultiResolutionNet of :mod:`nasbench.spaces.mrnet`;
``params``/``flops`` follow the benchmark's convention (classification head
with 50 classes; FLOPs thop-style at 128x128), which reproduces the pickles'
``params`` and ``flops`` columns exactly (``tests/test_mrnet.py``).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ArchError
from ..registry import SPACES
from .base import SearchSpace, gene_value, short_repr

#: legal values of a count gene (module repeats n_b, BasicBlocks per branch c)
COUNTS = (1, 2, 3, 4)
#: legal values of a channel gene (multiples of 8 up to 128)
CHANNELS = tuple(range(8, 129, 8))
NUM_BRANCHES = 4


def _gene_layout():
    names, kinds = ["in0", "in1"], ["channel", "channel"]
    for b in range(1, NUM_BRANCHES + 1):
        names.append(f"n{b}")
        kinds.append("count")
        names += [f"c{b}_{i}" for i in range(1, b + 1)]
        kinds += ["count"] * b
        names += [f"w{b}_{i}" for i in range(1, b + 1)]
        kinds += ["channel"] * b
    names.append("last")
    kinds.append("channel")
    return tuple(names), tuple(kinds)


#: gene names (``in0``, ``n2``, ``c3_1``, ``w4_2``, ``last``...) and kinds (``count``/``channel``)
GENE_NAMES, GENE_KINDS = _gene_layout()
CODE_LEN = len(GENE_NAMES)  # 27
#: start index of each branch block (at its ``n_b`` gene) in the code
_BLOCK_START = {b: 2 + sum(1 + 2 * k for k in range(1, b)) for b in range(1, NUM_BRANCHES + 1)}
#: middle code: 64 channels, 2 for every count (NCP's default start)
MIDDLE_CODE = tuple(64 if k == "channel" else 2 for k in GENE_KINDS)

_STRING_HELP = ("expected 6 '-'-separated groups 'in0_in1-n1_1_c_w-n2_2_c_c_w_w-n3_3_c_c_c_w_w_w-"
                "n4_4_c_c_c_c_w_w_w_w-last', e.g. "
                "'32_16-1_1_1_32-3_2_3_2_16_32-1_3_1_1_1_112_48_32-2_4_4_3_4_2_32_64_32_112-128'")


def gene_bounds() -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` float arrays of the legal range of every gene."""
    lo = np.array([COUNTS[0] if k == "count" else CHANNELS[0] for k in GENE_KINDS], dtype=np.float64)
    hi = np.array([COUNTS[-1] if k == "count" else CHANNELS[-1] for k in GENE_KINDS], dtype=np.float64)
    return lo, hi


def round_code(vec) -> tuple:
    """Round a real 27-vector to the nearest legal code (clamped; channels to multiples of 8)."""
    v = np.asarray(vec, dtype=np.float64).reshape(-1)
    if v.size != CODE_LEN:
        raise ArchError(f"nas_bench_mr: code vector has {v.size} entries, expected {CODE_LEN}")
    if not np.all(np.isfinite(v)):
        raise ArchError("nas_bench_mr: code vector has non-finite entries")
    out = []
    for x, k in zip(v, GENE_KINDS):
        if k == "count":
            out.append(int(min(max(round(x), COUNTS[0]), COUNTS[-1])))
        else:
            out.append(int(min(max(round(x / 8.0), 1), CHANNELS[-1] // 8)) * 8)
    return tuple(out)


@SPACES.register("nas_bench_mr")
class NASBenchMRSpace(SearchSpace):
    """NAS-Bench-MR codes: 27 genes (see module doc). Keys are NCP code strings.

    Args:
        variant: setting name (``seg``, ``cls-10c``...); only names the space.
        num_classes: accepted for ``build_space`` compatibility (from data.num_classes), ignored.
    """

    name = "nas_bench_mr"

    def __init__(self, variant: str | None = None, num_classes=None):
        self.variant = variant or ""
        self.name = f"nas_bench_mr/{self.variant}" if self.variant else "nas_bench_mr"

    # -- genes ------------------------------------------------------------------
    @property
    def num_genes(self) -> int:
        return CODE_LEN

    def choices(self, i: int):
        if not 0 <= int(i) < CODE_LEN:
            raise IndexError(f"{self.name}: gene index {i} out of range 0..{CODE_LEN - 1}")
        return COUNTS if GENE_KINDS[int(i)] == "count" else CHANNELS

    def validate(self, arch) -> tuple:
        """Code tuple/list of 27 ints or a code string -> tuple; :class:`ArchError` names the bad gene."""
        if isinstance(arch, str):
            return self.decode(arch)
        try:
            vals = list(arch)
        except TypeError:
            raise ArchError(f"{self.name}: architecture {short_repr(arch)} is not a sequence of ints") from None
        if len(vals) != CODE_LEN:
            raise ArchError(f"{self.name}: code {short_repr(arch)} has {len(vals)} genes, expected {CODE_LEN}")
        out = [gene_value(self.name, arch, i, a)
               for i, a in enumerate(vals)]
        for i, a in enumerate(out):
            allowed = self.choices(i)
            if a not in allowed:
                raise ArchError(f"{self.name}: gene {i} ({GENE_NAMES[i]}, a {GENE_KINDS[i]}) of {tuple(out)} "
                                f"is {a}, allowed values are {list(allowed)}")
        return tuple(out)

    # -- keys -------------------------------------------------------------------
    def encode(self, arch) -> str:
        """Code -> NCP code string (``search_list.txt`` format)."""
        a = self.validate(arch)
        groups = [f"{a[0]}_{a[1]}"]
        for b in range(1, NUM_BRANCHES + 1):
            s = _BLOCK_START[b]
            groups.append("_".join(str(x) for x in (a[s], b) + a[s + 1:s + 1 + 2 * b]))
        groups.append(str(a[-1]))
        return "-".join(groups)

    def decode(self, key) -> tuple:
        """NCP code string -> 27-int code; :class:`ArchError` names the bad group/position."""
        if not isinstance(key, str):
            raise ArchError(f"{self.name}: key {short_repr(key)} is not a string; {_STRING_HELP}")
        groups = key.strip().split("-")
        if len(groups) != NUM_BRANCHES + 2:
            raise ArchError(f"{self.name}: key {short_repr(key)} has {len(groups)} groups; {_STRING_HELP}")
        parsed = []
        for gi, g in enumerate(groups):
            try:
                parsed.append([int(t) for t in g.split("_")])
            except ValueError:
                raise ArchError(f"{self.name}: key {short_repr(key)}: group {gi} {g!r} is not '_'-separated ints") from None
        if len(parsed[0]) != 2:
            raise ArchError(f"{self.name}: key {short_repr(key)}: group 0 {groups[0]!r} must be 'in0_in1' (2 ints)")
        if len(parsed[-1]) != 1:
            raise ArchError(f"{self.name}: key {short_repr(key)}: last group {groups[-1]!r} must be one int (head channels)")
        code = list(parsed[0])
        for b in range(1, NUM_BRANCHES + 1):
            g = parsed[b]
            if len(g) != 2 + 2 * b:
                raise ArchError(f"{self.name}: key {short_repr(key)}: group {b} {groups[b]!r} has {len(g)} ints, expected "
                                f"{2 + 2 * b} (n, b={b}, {b} conv counts, {b} channel widths)")
            if g[1] != b:
                raise ArchError(f"{self.name}: key {short_repr(key)}: group {b} {groups[b]!r} has branch count {g[1]}, "
                                f"expected {b}")
            code += [g[0]] + g[2:]
        code += parsed[-1]
        return self.validate(code)

    # -- network setting ---------------------------------------------------------
    def to_setting(self, arch) -> dict:
        """Code -> ``{"input_channel": [in0, in1], "network_setting": [[b, [c..], [w..]], ...], "last_channel"}``."""
        a = self.validate(arch)
        setting = []
        for b in range(1, NUM_BRANCHES + 1):
            s = _BLOCK_START[b]
            entry = [b, list(a[s + 1:s + 1 + b]), list(a[s + 1 + b:s + 1 + 2 * b])]
            setting += [[entry[0], list(entry[1]), list(entry[2])] for _ in range(a[s])]
        return {"input_channel": [a[0], a[1]], "network_setting": setting, "last_channel": a[-1]}

    def from_setting(self, input_channel, network_setting, last_channel) -> tuple:
        """Network setting -> code. Entries must be grouped by branch count 1, 2, 3, 4, each
        group 1..4 identical entries. Raises :class:`ArchError` naming the bad entry."""
        try:
            ic = [int(x) for x in input_channel]
        except (TypeError, ValueError):
            raise ArchError(f"{self.name}: input_channel {input_channel!r} is not a list of ints") from None
        if len(ic) != 2:
            raise ArchError(f"{self.name}: input_channel {input_channel!r} must have 2 entries")
        code = list(ic)
        entries = list(network_setting)
        pos = 0
        for b in range(1, NUM_BRANCHES + 1):
            n, first = 0, None
            while pos < len(entries):
                e = entries[pos]
                try:
                    nb, convs, chans = int(e[0]), [int(x) for x in e[1]], [int(x) for x in e[2]]
                except (TypeError, ValueError, IndexError, KeyError):
                    raise ArchError(f"{self.name}: setting entry {pos} {e!r} is not [branches, [convs], [channels]]") from None
                if nb != b:
                    break
                if len(convs) != b or len(chans) != b:
                    raise ArchError(f"{self.name}: setting entry {pos} {e!r} has {b} branches but "
                                    f"{len(convs)} convs / {len(chans)} channels")
                if first is None:
                    first = (convs, chans)
                elif (convs, chans) != first:
                    raise ArchError(f"{self.name}: setting entry {pos} {e!r} differs from the first "
                                    f"{b}-branch entry {[b, *first]!r}; a code repeats identical modules")
                n += 1
                pos += 1
            if first is None:
                raise ArchError(f"{self.name}: setting {network_setting!r} has no {b}-branch entry at position {pos}")
            code += [n] + first[0] + first[1]
        if pos != len(entries):
            raise ArchError(f"{self.name}: setting entry {pos} {entries[pos]!r} is out of order "
                            "(entries must go 1, 2, 3, 4 branches)")
        code.append(last_channel)
        return self.validate(code)

    # -- helpers -------------------------------------------------------------------
    def middle(self) -> tuple:
        """NCP's default start code (channels 64, counts 2)."""
        return MIDDLE_CODE

    def round(self, vec) -> tuple:
        """Nearest legal code of a real 27-vector (see :func:`round_code`)."""
        return round_code(vec)

    def __iter__(self):
        n = math.prod(len(self.choices(i)) for i in range(CODE_LEN))  # len() cannot exceed sys.maxsize
        raise NotImplementedError(f"{self.name}: the code space has {n:.3g} members; "
                                  "iterate the benchmark's keys instead")

    # -- cost and networks ------------------------------------------------------------
    def build(self, arch, num_classes: int | None = None, task: str = "cls"):
        """Standalone MultiResolutionNet of ``arch`` (``task`` 'cls' | 'seg' | 'video')."""
        from .mrnet import PARAMS_NUM_CLASSES, MultiResolutionNet
        return MultiResolutionNet(self.to_setting(arch), task=task,
                                  num_classes=num_classes or PARAMS_NUM_CLASSES)

    def flops(self, arch) -> int:
        """MACs the benchmark's way (thop at 128x128, BN counted, 50-class head)."""
        from .mrnet import count_flops
        return int(count_flops(self.to_setting(arch)))

    def params(self, arch) -> int:
        """Parameters the benchmark's way (50-class classification head)."""
        from .mrnet import count_params
        return int(count_params(self.to_setting(arch)))


__all__ = ["NASBenchMRSpace", "GENE_NAMES", "GENE_KINDS", "CODE_LEN", "COUNTS", "CHANNELS",
           "MIDDLE_CODE", "gene_bounds", "round_code"]
