"""Temporary: the process-pool scheduler lands here."""
from .core import get  # noqa: F401
