"""Evaluators: the protocol, the query cache every searcher uses, and the
registered scorers of trained supernets (``eval.type``)."""
from .base import EvalContext, Evaluator
from .query import QueryCache, SearchResult, check_flops_range, is_legal_flops
from . import accuracy, genotype, indicator  # noqa: F401  (registration)
from .accuracy import SupernetEvaluator, accuracy as accuracy_of, make_batches, recalibrate_bn
from .distributed import DistributedEvaluator
from .genotype import GenotypeEvaluator
from .indicator import BNIndicatorEvaluator, bn_score_table

__all__ = ["Evaluator", "EvalContext", "QueryCache", "SearchResult", "check_flops_range", "is_legal_flops",
           "SupernetEvaluator", "make_batches", "recalibrate_bn", "accuracy_of", "DistributedEvaluator",
           "GenotypeEvaluator", "BNIndicatorEvaluator", "bn_score_table"]
