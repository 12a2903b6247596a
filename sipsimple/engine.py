"""The seed's path to the Engine: ``from sipsimple.engine import Engine``."""

from sipsimple.core.engine import Engine

__all__ = ["Engine"]
