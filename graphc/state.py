"""Variable state: the value behind a Variable, and the locks that make updates atomic.

Part of the IR core, below the front end and the runtime. A `VariableState` is the one
place a variable's value lives. Its host array is the value, unless a runtime has handed
over a newer one that it keeps elsewhere (`hand_over`); then the host array is dropped,
and reading the state calls back that runtime to bring the value home. Every change of
the value bumps `version`, so a runtime that keeps a copy elsewhere can tell whether its
copy is still the value. The front-end `Variable` holds a state, so do the default
graph's node for it (while any Tensor computed from the variable lives) and every
Function that reads or updates it; nothing else does, so the value is freed with the last
of them.

Updates under concurrency: a call of a function that updates variables holds the
update lock of every variable it reads or writes, from reading the old values to
installing the new ones. The locks are taken in one global order (the order the states
were created), so two calls whose variable sets overlap never deadlock, and each call's
updates are atomic with respect to every other updating call. A call that updates
nothing takes no lock. `Variable.value`, `Variable.assign` and `graphc.save` take the
same locks, so they never see half an update.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from graphc.errors import InternalError

_serials = itertools.count()


class VariableState:
    """The value of one variable: declared dtype and shape, its host array (or the way
    back to a newer value a runtime keeps elsewhere) and the value's version."""

    __slots__ = (
        "__weakref__",
        "_array",
        "_lock",
        "_to_host",
        "dtype",
        "name",
        "serial",
        "shape",
        "trainable",
        "update_lock",
        "version",
    )

    def __init__(self, array: np.ndarray, name: str, trainable: bool = True) -> None:
        self.name = name
        self.dtype = array.dtype
        self.shape = tuple(array.shape)
        self.trainable = bool(trainable)
        self.serial = next(_serials)  # the global order update locks are taken in
        self.update_lock = threading.Lock()
        self._lock = threading.Lock()  # guards the array with the way back and version
        self._array: np.ndarray | None = array
        self._to_host: Callable[[], np.ndarray] | None = None  # while _array is None
        self.version = 0  # bumped by every change of the value

    def __repr__(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        return f"<graphc state of {self.name!r} {self.dtype.name}[{dims}]>"

    def get_state(self) -> np.ndarray:
        """The current host array itself, not a copy (for executors, which never write to
        it except through `wrote_host_state`); brought home first when a runtime holds
        the newest value (see `hand_over`)."""
        array = self._array
        if array is None:
            with self._lock:
                if self._array is None:
                    self._array = self._to_host()  # type: ignore[misc]
                    self._to_host = None
                array = self._array
        return array  # type: ignore[return-value]

    def set_state(self, array: np.ndarray) -> None:
        """Replace the current array (the caller owns no other reference to it): a
        C-contiguous array of the declared dtype and shape, as compiled code reads it."""
        self._check(array)
        if not array.flags.c_contiguous:
            raise InternalError(f"variable {self.name!r}: a new state must be C-contiguous")
        with self._lock:
            self._array = array
            self._to_host = None
            self.version += 1

    def wrote_host_state(self) -> None:
        """An executor writes the host array in place: a copy kept elsewhere is stale.
        Called before and again after the write, since a reader that takes no update
        lock may copy the array while it is being written (it then holds the version
        of the middle, which the second call makes old)."""
        # no lock: the caller holds the update lock, as every change of the value does,
        # and the host array stays the same object (so `host_state` stays consistent)
        self.version += 1

    def host_state(self) -> tuple[int, np.ndarray | None]:
        """The version and the host array, read together: None while a runtime holds
        the newest value (the host array is the value of that version otherwise)."""
        with self._lock:
            return self.version, self._array

    def hand_over(self, value: Any, to_host: Callable[[], np.ndarray]) -> int:
        """A runtime holds the newest value, `value` (an array-like of the declared dtype
        and shape, kept outside the host); `to_host()` returns it as a new host array
        when the host reads the state. Returns the new version."""
        self._check(value)
        with self._lock:
            self._array = None
            self._to_host = to_host
            self.version += 1
            return self.version

    def _check(self, array: Any) -> None:
        # a variable keeps its declared type whatever the passes did to its update
        if tuple(array.shape) != self.shape or array.dtype != self.dtype:
            raise InternalError(
                f"variable {self.name!r} is {self.dtype.name}{list(self.shape)}; an update "
                f"produced {array.dtype}{list(array.shape)} (a bug in graphc: please report it)"
            )


class UpdateLocks:
    """The update locks of a set of states, taken in the global order: a context manager."""

    __slots__ = ("_locks",)

    def __init__(self, states: Iterable[VariableState]) -> None:
        unique = {id(s): s for s in states}.values()
        self._locks = tuple(s.update_lock for s in sorted(unique, key=lambda s: s.serial))

    def __bool__(self) -> bool:
        return bool(self._locks)

    def __enter__(self) -> None:
        taken = 0
        try:
            for lock in self._locks:
                lock.acquire()
                taken += 1
        except BaseException:  # (a KeyboardInterrupt while waiting) release what we hold
            for lock in reversed(self._locks[:taken]):
                lock.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        for lock in reversed(self._locks):
            lock.release()


NO_LOCKS = UpdateLocks(())
