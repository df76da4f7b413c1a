"""Weight-sharing supernets per space family: channel windows (width) and choice blocks (operators)."""
from .choice import ChoiceBlock, ChoiceSupernet
from .width import WidthSupernet

__all__ = ["WidthSupernet", "ChoiceBlock", "ChoiceSupernet"]
