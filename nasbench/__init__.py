"""nasbench: one PyTorch codebase for neural architecture search research.

Workflow: YAML config -> search space + algorithm -> supernet training
(``tools/train_supernet.py``) -> search (``tools/search.py``) -> standalone
retraining (``tools/retrain.py``), with tabular benchmarks
(:mod:`nasbench.benchmarks`) as exact ground truth behind the same evaluator
interface.
"""

__version__ = "0.1.0"
