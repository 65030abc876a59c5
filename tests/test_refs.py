"""Concatenation reference allocation (gateway.modem.refs)."""

from __future__ import annotations

import json
import os

import pytest

from gateway.modem import refs
from gateway.modem.refs import FileReferenceAllocator, ReferenceStateError


def test_step_counts_up_and_wraps() -> None:
    assert refs.step(5, 8) == 6
    assert refs.step(255, 8) == 0
    assert refs.step(0xFFFF, 16) == 0
    assert refs.step(255, 16) == 256


def test_first_reference_is_random_in_range() -> None:
    firsts = {refs.step(None, 8) for _ in range(200)}
    assert all(0 <= r <= 255 for r in firsts)
    assert len(firsts) > 50  # random, not always 0
    assert all(0 <= refs.step(None, 16) <= 0xFFFF for _ in range(50))


def test_sequence_per_recipient(tmp_path) -> None:
    alloc = FileReferenceAllocator(tmp_path / "r.json")
    a1 = alloc.next("+111")
    b1 = alloc.next("+222")
    assert alloc.next("+111") == (a1 + 1) % 256
    assert alloc.next("+222") == (b1 + 1) % 256


def test_8_and_16_bit_are_separate_counters(tmp_path) -> None:
    alloc = FileReferenceAllocator(tmp_path / "r.json")
    r8 = alloc.next("+111")
    r16 = alloc.next("+111", bits=16)
    assert alloc.next("+111") == (r8 + 1) % 256
    assert alloc.next("+111", bits=16) == (r16 + 1) % 65536
    state = json.loads((tmp_path / "r.json").read_text())
    assert set(state) == {"8:+111", "16:+111"}


def test_state_survives_a_restart(tmp_path) -> None:
    path = tmp_path / "sub" / "dir" / "r.json"  # parents are created
    first = FileReferenceAllocator(path).next("+111")
    assert FileReferenceAllocator(path).next("+111") == (first + 1) % 256


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path) -> None:
    alloc = FileReferenceAllocator(tmp_path / "r.json")
    for _ in range(20):
        alloc.next("+111")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.json.lock"]


def test_wrap_around_after_a_full_cycle(tmp_path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"8:+111": 255}))
    assert FileReferenceAllocator(path).next("+111") == 0


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"8:+1": "x"}'])
def test_corrupt_state_is_a_clear_error(tmp_path, content: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(ReferenceStateError) as info:
        FileReferenceAllocator(path).next("+111")
    assert str(path) in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_state_is_a_clear_error(tmp_path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ReferenceStateError):
            FileReferenceAllocator(locked / "r.json").next("+111")
    finally:
        locked.chmod(0o700)


def test_state_path_that_is_a_directory_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "r.json"
    path.mkdir()
    with pytest.raises(ReferenceStateError):
        FileReferenceAllocator(path).next("+111")


def test_allocator_satisfies_the_protocol(tmp_path) -> None:
    alloc: refs.ReferenceAllocator = FileReferenceAllocator(tmp_path / "r.json")
    assert 0 <= alloc.next("+1") <= 255
