"""derain-zoo: video rain removal models on PyTorch Lightning, compared under one protocol."""

__version__ = "0.1.0"
