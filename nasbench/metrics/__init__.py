"""Evaluation metrics: ranking quality of supernets/predictors against ground truth."""
from .ranking import banded_correlations, rank_correlations, top_k_overlap

__all__ = ["rank_correlations", "banded_correlations", "top_k_overlap"]
