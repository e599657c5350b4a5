"""ctvl: a command-line toolkit for 3D CT vision-language models.

Importing this package is cheap: no torch, faiss, h5py or transformers are imported here.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
