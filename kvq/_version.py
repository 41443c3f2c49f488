"""The version of kvq, written once: pyproject.toml reads it for the package metadata."""

__version__ = "1.0.0"
