"""Large CPU tensors go on huge pages once derain_zoo is imported, and DERAIN_ZOO_ALLOCATOR=heap keeps
freed blocks for reuse: what keeps real-resolution frames near the network's own per-pixel rate
(derain_zoo/allocator.py, benchmarks/README.md "Page faults")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from derain_zoo.cli import main

THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")

# Faults taken while filling one fresh 64 MiB tensor: 16384 at 4 KiB pages, about 32 + the
# allocator's own pages when the kernel backs it with 2 MiB pages.
FAULTS_PER_64_MIB = """
import resource, sys
import torch
import derain_zoo
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    block = torch.empty(16 * 2**20)
    block.fill_(1.0)
    del block
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) // 4)
"""


def faults_per_64_mib(environment: dict[str, str]) -> int:
    result = subprocess.run(
        [sys.executable, "-c", FAULTS_PER_64_MIB], env=environment, capture_output=True, text=True, check=True
    )
    return int(result.stdout.strip().splitlines()[-1])


def _environment(**values: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key != "THP_MEM_ALLOC_ENABLE"}
    return {**environment, **values}


def test_importing_the_zoo_turns_huge_page_allocation_on_unless_the_user_set_it():
    script = "import torch, derain_zoo, os; print(os.environ['THP_MEM_ALLOC_ENABLE'])"
    for environment, expected in ((_environment(), "1"), (_environment(THP_MEM_ALLOC_ENABLE="0"), "0")):
        result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
        assert result.stdout.strip() == expected


@pytest.mark.skipif(
    not THP_SETTING.exists() or "[never]" in THP_SETTING.read_text(), reason="the kernel has no huge pages to give"
)
def test_a_large_tensor_is_faulted_in_far_fewer_pages_after_importing_the_zoo():
    with_zoo = faults_per_64_mib(_environment())
    turned_off = faults_per_64_mib(_environment(THP_MEM_ALLOC_ENABLE="0"))
    assert turned_off > 16000
    assert with_zoo < turned_off / 8


# glibc's own books on one 64 MiB tensor (mallinfo2): bytes in blocks mapped on their own while it
# lives, and bytes kept free in the heap once it is freed. glibc maps every such block on its own and
# returns it on free, so the kernel faults it in and zeroes it again for the next layer; from the heap
# the freed block is handed out again. (Fault counts say the same on this project's machine, heap 0
# against 544 per 64 MiB, but once read 544 for heap on CI's: the books are glibc's, not the kernel's.)
HEAP_BOOKS_FOR_64_MIB = """
import ctypes
import torch
from derain_zoo.allocator import configure_allocator

class MallInfo2(ctypes.Structure):
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    _fields_ = [(name, ctypes.c_size_t) for name in names.split()]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
print(configure_allocator())
before = libc.mallinfo2()
block = torch.empty(16 * 2**20).fill_(1.0)
live = libc.mallinfo2()
del block
freed = libc.mallinfo2()
print(live.hblkhd - before.hblkhd, freed.fordblks - before.fordblks)
"""
MIB_64 = 64 * 2**20


def heap_books_for_64_mib(allocator: str) -> tuple[str, int, int]:
    """(allocator in use, bytes mapped on their own for the live block, bytes kept free after it)."""
    environment = _environment(DERAIN_ZOO_ALLOCATOR=allocator)
    result = subprocess.run(
        [sys.executable, "-c", HEAP_BOOKS_FOR_64_MIB], env=environment, capture_output=True, text=True, check=True
    )
    used, mapped, kept = result.stdout.split()[-3:]
    return used, int(mapped), int(kept)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt and mallinfo2 are glibc's")
def test_the_heap_allocator_keeps_freed_blocks_to_hand_out_again_instead_of_returning_them():
    used, mapped, kept = heap_books_for_64_mib("system")
    assert used == "system" and mapped >= MIB_64 and kept < MIB_64
    used, mapped, kept = heap_books_for_64_mib("heap")
    assert used == "heap" and mapped < MIB_64 and kept >= MIB_64


def test_an_unknown_allocator_is_refused_in_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DERAIN_ZOO_ALLOCATOR", "jemalloc")
    with pytest.raises(SystemExit, match="DERAIN_ZOO_ALLOCATOR=jemalloc: expected system or heap"):
        main(["weights"])
