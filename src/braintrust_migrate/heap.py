"""The C heap of the CLI process: large buffers (~1 MiB response and request bodies) are mapped and
unmapped on their own instead of carved from the main heap.

glibc raises its mmap threshold each time a mapped block is freed, so after the first body, the rest
came from the main heap, which then fragments and is never given back: peak RSS climbed from ~200
to ~310 MiB over a 400k-row migration and stayed there. A fixed threshold keeps it at ~190-235.
Only the CLI sets it (a library must not retune its host process's allocator)."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>; setting it also turns the dynamic adjustment off
MMAP_THRESHOLD = 256 * 1024


def map_large_buffers() -> bool:
    """Fix glibc's mmap threshold; False where the C library is not glibc (nothing to do)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False
