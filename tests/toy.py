"""A toy search space shared by the searcher tests: n genes with widths 1..k, FLOPs = sum of neighbour products."""
from nasbench.spaces.base import SearchSpace


class ToySpace(SearchSpace):
    name = "toy"

    def __init__(self, n=10, k=4):
        self.n, self.k = n, k

    @property
    def num_genes(self):
        return self.n

    def choices(self, i):
        return tuple(range(1, self.k + 1))

    def flops(self, arch):
        return int(sum(arch[i] * arch[i + 1] for i in range(len(arch) - 1)))


TARGET = (3, 1, 4, 2, 2, 3, 1, 4, 2, 3)  # the optimum of ToyEvaluator; flops 46


class ToyEvaluator:
    """Score = -squared distance to ``target``; records every batch it gets."""

    def __init__(self, target=TARGET):
        self.target = target
        self.calls = []

    def evaluate(self, archs):
        self.calls.append([tuple(a) for a in archs])
        return [{"score": -float(sum((a - t) ** 2 for a, t in zip(arch, self.target))),
                 "extra": sum(arch)} for arch in archs]
