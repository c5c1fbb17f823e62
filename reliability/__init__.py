"""Reliability engineering and chaos testing harness for AI inference platforms."""

from reliability.errors import HarnessError, InputError

__all__ = ["HarnessError", "InputError"]
__version__ = "0.1.0"
