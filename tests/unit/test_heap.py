"""The CLI fixes glibc's mmap threshold (large bodies mapped on their own); elsewhere it does nothing."""

from __future__ import annotations

import platform

import pytest

from braintrust_migrate import heap


def test_on_glibc_the_threshold_is_set() -> None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert heap.map_large_buffers() is True


def test_another_c_library_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    calls = []
    monkeypatch.setattr(heap.ctypes, "CDLL", lambda *a: calls.append(a))
    assert heap.map_large_buffers() is False
    assert calls == []
