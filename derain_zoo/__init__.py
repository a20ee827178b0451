"""derain-zoo: video rain removal models on PyTorch Lightning, compared under one protocol."""

from derain_zoo.allocator import enable_huge_pages

__version__ = "0.1.0"

# before torch's first allocation: large activations on huge pages (derain_zoo/allocator.py says why)
enable_huge_pages()
