"""How this process gets memory for large CPU tensors: where a real-resolution frame's time goes.

A 480x640 frame's activations are tens of MB per layer. glibc serves every block over 32 MB with a
fresh ``mmap`` and returns it on ``free``, so each layer's output is faulted in and zeroed by the kernel
again: on this project's CPU that made a DDSA frame 2.3x slower per pixel at 480x640 than at 256x256,
with no arithmetic added (benchmarks/README.md, "Page faults"). Two remedies, one owner:

* huge pages (on by default, at import): PyTorch puts CPU blocks of 2 MB and more on transparent huge
  pages when ``THP_MEM_ALLOC_ENABLE`` is set before its first allocation, so a block takes one fault per
  2 MB instead of per 4 KiB. A value the user set wins; ``THP_MEM_ALLOC_ENABLE=0`` turns it off.
* the heap (opt-in, ``DERAIN_ZOO_ALLOCATOR=heap`` for the ``derain-zoo`` commands): glibc keeps freed
  blocks and hands them out again, so nothing is zeroed twice. The fastest, but freed holes fragment the
  heap: the peak memory grows by up to 2x, and the process keeps it until it ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

ALLOCATOR_VARIABLE = "DERAIN_ZOO_ALLOCATOR"
ALLOCATORS = ("system", "heap")
# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
KEEP_FREED_BYTES = 2**30


def enable_huge_pages() -> None:
    """Ask PyTorch for huge pages for large CPU blocks, unless the user decided (works before its first allocation)."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def allocator_from_environment() -> str:
    """The allocator ``DERAIN_ZOO_ALLOCATOR`` names (default ``system``); anything else is refused, naming it."""
    name = os.environ.get(ALLOCATOR_VARIABLE, "system").strip().lower() or "system"
    if name not in ALLOCATORS:
        choices = " or ".join(ALLOCATORS)
        raise ValueError(f"{ALLOCATOR_VARIABLE}={os.environ[ALLOCATOR_VARIABLE]}: expected {choices}")
    return name


def use_heap() -> bool:
    """Serve every block from glibc's heap and keep up to 1 GiB freed at its top (``mallopt``); False where
    the C library has no ``mallopt`` (not glibc), which leaves the system allocator in place."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES))


def configure_allocator() -> str:
    """Apply ``DERAIN_ZOO_ALLOCATOR`` to this process; the allocator in use (``system`` where heap is unavailable)."""
    name = allocator_from_environment()
    if name == "heap" and not use_heap():
        return "system"
    return name
