"""Weight-sharing supernets per space family."""
from .width import WidthSupernet

__all__ = ["WidthSupernet"]
