"""Weight-sharing supernets per space family: channel windows (width), choice blocks
(operators) and DARTS cells (differentiable); the protocol is :mod:`.base`."""
from .base import DifferentiableSupernet, Supernet
from .choice import ChoiceBlock, ChoiceSupernet
from .width import WidthSupernet

__all__ = ["Supernet", "DifferentiableSupernet", "WidthSupernet", "ChoiceBlock", "ChoiceSupernet"]
