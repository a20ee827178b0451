"""derain-zoo: video rain removal models on PyTorch Lightning, compared under one protocol."""

import os

__version__ = "0.1.0"

# Restoring a real-resolution frame on CPU allocates activations of tens of MB per layer; glibc maps
# each one fresh and the kernel faults it in 4 KiB at a time, which made a 480x640 frame 1.6-2x
# slower per pixel than a 256x256 one (benchmarks/README.md, "Page faults"). PyTorch puts CPU
# allocations of 2 MB and more on transparent huge pages when this variable is set before its first
# allocation; a value the user set wins, and THP_MEM_ALLOC_ENABLE=0 turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
