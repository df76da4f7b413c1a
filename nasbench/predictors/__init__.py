"""Performance predictors: architecture code -> metrics (NCP's MLP, METHODS.md 5.3)."""
from .mlp import MLPPredictor, load_predictor, save_predictor, train_predictor

__all__ = ["MLPPredictor", "train_predictor", "save_predictor", "load_predictor"]
