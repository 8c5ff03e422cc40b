"""crossmodal: cross-modal hashing of images and texts.

Learn short binary codes so that a sentence can find pictures and a picture can find
sentences by Hamming distance. See ``README.md`` for the two commands that get you going.
"""

__version__ = "0.1.0"

from crossmodal.errors import CrossmodalError, DataError, ConfigError  # noqa: E402

__all__ = ["__version__", "CrossmodalError", "DataError", "ConfigError"]
