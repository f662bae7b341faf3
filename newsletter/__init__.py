"""newsletter: compile, render and deliver an email digest, and keep its subscriber list."""

__version__ = "0.1.0"
__all__ = ["__version__"]
