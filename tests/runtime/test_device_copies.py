"""The CUDA runtime's table of variables' device copies (runtime/cuda.py DeviceCopies)
and the state's side of it (graphc/state.py: versions and `hand_over`), without a GPU:
"device arrays" here are numpy arrays behind a copy_to_host method."""

from __future__ import annotations

import gc as garbage
import weakref

import numpy as np
import pytest

from graphc.errors import InternalError
from graphc.runtime.cuda import DeviceCopies
from graphc.state import VariableState


class FakeDeviceArray:
    """An array "in device memory": numba's device arrays' shape, dtype and copy_to_host."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.array(array, copy=True)
        self.shape, self.dtype = self.array.shape, self.array.dtype
        self.copies_to_host = 0

    def copy_to_host(self) -> np.ndarray:
        self.copies_to_host += 1
        return self.array.copy()


class Uploads:
    """An upload function that counts its uploads."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, host: np.ndarray) -> FakeDeviceArray:
        self.count += 1
        return FakeDeviceArray(host)


def test_a_copy_is_uploaded_once_and_kept_while_current() -> None:
    copies, upload = DeviceCopies(), Uploads()
    state = VariableState(np.arange(3.0), "w")
    assert copies.current(state) is None
    first = copies.read(state, upload)
    assert copies.read(state, upload) is first
    assert copies.current(state) is first
    assert upload.count == 1
    np.testing.assert_array_equal(first.array, [0.0, 1.0, 2.0])


@pytest.mark.parametrize("write", ["set_state", "in_place"])
def test_a_host_write_makes_the_copy_stale(write: str) -> None:
    copies, upload = DeviceCopies(), Uploads()
    state = VariableState(np.arange(3.0), "w")
    copies.read(state, upload)
    if write == "set_state":
        state.set_state(np.full(3, 7.0))
    else:  # an executor writes the host array where it lies
        state.wrote_host_state()
        state.get_state()[:] = 7.0
        state.wrote_host_state()
    assert copies.current(state) is None
    np.testing.assert_array_equal(copies.read(state, upload).array, [7.0, 7.0, 7.0])
    assert upload.count == 2


def test_a_value_handed_over_is_brought_home_when_read() -> None:
    copies, upload = DeviceCopies(), Uploads()
    state = VariableState(np.zeros(2), "w")
    version = state.version
    new = FakeDeviceArray(np.array([4.0, 5.0]))
    copies.install(state, new)
    assert state.version > version
    assert state.host_state() == (state.version, None)  # no host array: it is stale
    assert copies.read(state, upload) is new  # the device reads it where it lies
    np.testing.assert_array_equal(state.get_state(), [4.0, 5.0])
    np.testing.assert_array_equal(state.get_state(), [4.0, 5.0])
    assert new.copies_to_host == 1  # brought home once
    assert copies.current(state) is new  # still current: host and device are equal
    assert upload.count == 0


def test_a_copy_of_an_older_version_never_replaces_a_newer_one() -> None:
    """A reader that takes no lock uploads the host value while an update hands over a
    newer one: the reader's copy, of the older version, is not kept."""
    copies = DeviceCopies()
    state = VariableState(np.zeros(2), "w")
    new = FakeDeviceArray(np.ones(2))

    def upload_during_an_update(host: np.ndarray) -> FakeDeviceArray:
        copies.install(state, new)  # the update lands while the reader uploads
        return FakeDeviceArray(host)

    old = copies.read(state, upload_during_an_update)
    np.testing.assert_array_equal(old.array, [0.0, 0.0])  # the reader's own value
    assert copies.current(state) is new
    np.testing.assert_array_equal(state.get_state(), [1.0, 1.0])


def test_a_reader_between_a_hand_over_and_its_copy_brings_the_value_home() -> None:
    """`install` hands the value over, then keeps the copy: a reader in between finds
    neither a host array nor a current copy, and reads the new value through the state."""
    copies, upload = DeviceCopies(), Uploads()
    state = VariableState(np.zeros(2), "w")
    new = FakeDeviceArray(np.ones(2))
    state.hand_over(new, new.copy_to_host)  # as install does, before it keeps the copy
    first = copies.read(state, upload)
    np.testing.assert_array_equal(first.array, [1.0, 1.0])
    assert (new.copies_to_host, upload.count) == (1, 1)
    assert copies.read(state, upload) is first  # kept: no second upload


def test_a_handed_over_value_keeps_the_declared_type() -> None:
    copies = DeviceCopies()
    state = VariableState(np.zeros(2, "float32"), "w")
    with pytest.raises(InternalError, match="float32"):
        copies.install(state, FakeDeviceArray(np.zeros(2, "float64")))
    with pytest.raises(InternalError, match="w"):
        copies.install(state, FakeDeviceArray(np.zeros(3, "float32")))
    np.testing.assert_array_equal(state.get_state(), [0.0, 0.0])


def test_the_table_keeps_no_state_alive() -> None:
    copies = DeviceCopies()
    state = VariableState(np.zeros(2), "w")
    copies.read(state, Uploads())
    copies.install(state, FakeDeviceArray(np.ones(2)))
    device = copies.current(state)
    garbage.collect()
    garbage.disable()  # freed by reference counting alone
    try:
        dead = weakref.ref(state), weakref.ref(device)
        del state, device
        assert all(ref() is None for ref in dead)
    finally:
        garbage.enable()
