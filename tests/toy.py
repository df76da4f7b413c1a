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
