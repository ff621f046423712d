"""The CUDA runtime: runs a generated CUDA module on an NVIDIA GPU (or numba's simulator).

Part of graphc.runtime; with graphc.kernels.cuda the only code that imports numba.cuda,
and only when a function is compiled for device="cuda", so graphc imports and works
without numba-cuda. `require()` says, as a GraphcError, why there is no usable device.

A `CudaExecutable` is the CUDA backend of the executable seam (base.py: the feed check,
shape keys, arenas, update locks and installing new states). A call:

1. checks the feeds: host arrays (numpy, lists, ...) are validated and converted as on
   the CPU; a feed with ``__cuda_array_interface__`` (numba device arrays, CuPy,
   PyTorch CUDA tensors) is used where it lies, without a copy, after the same checks
   of dtype and shape. A call whose host feeds have shapes and dtypes seen before skips
   the full check (the shape key), as on the CPU;
2. takes this thread's stream, device arena and error flag: concurrent calls from
   several threads each run on their own stream, a thread's calls run in order;
3. copies the host feeds to the device, launches the entry's kernels, and copies the
   outputs back (or leaves them on the device: `run_on_device`), then waits for the
   stream;
4. raises IndexOutOfRangeError if a kernel met a bad index, else installs the new
   variable states. A call of a graph with updates holds its variables' update locks
   throughout.

Variables live on the device between calls: `DEVICE_COPIES` keeps each variable's copy
in device memory, shared by every CUDA function of the process. A copy is uploaded on
first use (and again once the host value changed: the state's version says so); a new
value computed on the device is handed over to the variable's state (graphc.state), which
drops its host array and copies the value back only when the host reads it.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from graphc.errors import DeviceError, IndexOutOfRangeError, InputError
from graphc.runtime import cache
from graphc.runtime.base import BaseExecutable, generated_layout
from graphc.runtime.feeds import TensorSpec
from graphc.state import VariableState

_ERROR_CLEAR = np.zeros(1, np.int32)
# numba's simulator runs one kernel at a time in a process: there, calls take turns
_SIMULATOR_TURN = threading.Lock()


@functools.cache
def unavailable() -> str | None:
    """Why device="cuda" cannot run here, or None when it can."""
    try:
        from numba import config, cuda
    except ImportError as error:  # numba without its CUDA target
        return f"numba.cuda cannot be imported ({error}); install graphc[cuda]"
    if config.ENABLE_CUDASIM:
        return None
    try:
        if cuda.is_available():
            return None
        reason = "no NVIDIA GPU and CUDA driver were found"
    except Exception as error:  # a broken driver or toolkit: say what it said
        reason = f"CUDA could not be initialised ({type(error).__name__}: {error})"
    return f"{reason}; use device='cpu', or NUMBA_ENABLE_CUDASIM=1 for numba's simulator"


def _simulated() -> bool:
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def require() -> None:
    """Raise GraphcError saying why no CUDA device is usable, if none is."""
    reason = unavailable()
    if reason is not None:
        raise DeviceError(f"device='cuda': {reason}")


def is_device_array(value: Any) -> bool:
    """Whether `value` lives on the GPU: anything with __cuda_array_interface__, or a
    numba device array (the simulator's have no interface)."""
    return hasattr(value, "__cuda_array_interface__") or getattr(value, "__cuda_ndarray__", False)


def device_feed(value: Any, name: str, dtype: np.dtype) -> Any:
    """A feed already on the GPU as a numba device array (no copy); raises InputError for
    a dtype other than the declared one or a layout the kernels cannot read."""
    from numba import cuda

    array = value if getattr(value, "__cuda_ndarray__", False) else cuda.as_cuda_array(value)
    if array.dtype != dtype:
        raise InputError(
            f"input {name!r} is {dtype.name}; the device array given is {array.dtype.name} "
            "(cast it on the device first: graphc does not copy device feeds to cast them)"
        )
    if array.size and not array.is_c_contiguous():
        raise InputError(f"input {name!r}: a device array feed must be C-contiguous")
    return array


class DeviceCopies:
    """Each variable's copy in device memory, with the version of the value it holds:
    shared by every CUDA function of the process, and dropped with the variable's state
    (the table holds states weakly, and nothing in it refers to a state)."""

    def __init__(self) -> None:
        self._copies: weakref.WeakKeyDictionary[VariableState, tuple[int, Any]] = (
            weakref.WeakKeyDictionary()
        )
        # held only around the table's own reads and writes: never while a state's lock
        # is taken or a copy made, so a slow copy of one variable stalls no other
        self._lock = threading.Lock()

    def current(self, state: VariableState) -> Any:
        """The copy of the variable's current value, or None when there is none (never
        uploaded, or the host value changed since)."""
        with self._lock:
            copy = self._copies.get(state)
        return copy[1] if copy is not None and copy[0] == state.version else None

    def read(self, state: VariableState, upload: Callable[[np.ndarray], Any]) -> Any:
        """The variable's value in device memory: the copy kept here unless the host
        value is newer, else the host array uploaded with `upload(host_array)` (and
        kept). A reader that holds no update lock may get an update's old or new value."""
        version, host = state.host_state()
        with self._lock:
            copy = self._copies.get(state)
        if copy is not None and copy[0] >= version:
            return copy[1]
        if host is None:  # handed over, and `install` has not stored the copy yet
            host = state.get_state()  # (brings the new value home)
        device = upload(host)
        self._keep(state, version, device)
        return device

    def install(self, state: VariableState, device_array: Any) -> None:
        """Make `device_array` the variable's value: the state drops its host array and
        copies this one back when the host reads it."""
        version = state.hand_over(device_array, device_array.copy_to_host)
        self._keep(state, version, device_array, replace=True)

    def _keep(self, state: VariableState, version: int, device: Any, replace: bool = False) -> None:
        """Keep `device` as the copy of `version`, unless a newer one is kept already
        (or one of the same version, unless `replace`)."""
        with self._lock:
            kept = self._copies.get(state)
            if kept is None or kept[0] < version or (replace and kept[0] == version):
                self._copies[state] = (version, device)


DEVICE_COPIES = DeviceCopies()


class CudaExecutable(BaseExecutable):
    """A generated CUDA module and the state a call of it needs (see the module doc)."""

    def __init__(
        self,
        generated: Any,
        inputs: Sequence[TensorSpec],
        states: Mapping[int, VariableState],
    ) -> None:
        from numba import cuda

        module = cache.load_generated(generated.source)
        graph = generated.program.graph
        super().__init__(graph, inputs, states, "cuda", **generated_layout(generated, module))
        self._cuda = cuda
        self._simulated = _simulated()
        self.generated = generated
        self.source = generated.source
        self._entry = module.entry
        self._constants = tuple(cuda.to_device(c) for c in self._host_constants())
        # positions of the variables the entry writes where they lie (by identity)
        self._written = [
            i for i, v in enumerate(self._variables) if any(v is u for u in self._in_place)
        ]
        self._dtypes = tuple(spec.dtype for spec in inputs)
        self._ran = False  # numba.cuda compiles each kernel at its first launch

    @property
    def state(self) -> str:
        """The state: "pending" until a call has compiled (and run) the kernels, then "native"."""
        return "native" if self._ran else "pending"

    def _thread_state(self) -> tuple[Any, Any]:
        """This thread's stream and error flag."""
        local = self._local
        stream = getattr(local, "stream", None)
        if stream is None:
            stream = local.stream = self._cuda.stream()
            local.err = self._cuda.to_device(_ERROR_CLEAR, stream=stream)
        return stream, local.err

    def _new_arena(self, need: int) -> Any:
        return self._cuda.device_array(need, np.uint8, stream=self._local.stream)

    def _known(self, feeds: tuple[Any, ...]) -> tuple[Any, int] | None:
        """The dims and arena size of host feeds whose shapes were checked before: numpy
        arrays of the declared dtypes, C-contiguous (uploaded as they are)."""
        for feed, dtype in zip(feeds, self._dtypes, strict=True):
            if type(feed) is not np.ndarray or feed.dtype != dtype or not feed.flags.c_contiguous:
                return None
        return super()._known(feeds)

    def _call(self, feeds: tuple[Any, ...], on_device: bool = False) -> list[Any]:
        if self._simulated:
            with _SIMULATOR_TURN:
                return self._run(feeds, on_device)
        return self._run(feeds, on_device)

    def run_on_device(self, feeds: tuple[Any, ...]) -> list[Any]:
        """A call whose outputs stay in device memory (numba device arrays)."""
        return self._holding_locks(self._call, feeds, True)

    def _run(self, feeds: tuple[Any, ...], on_device: bool) -> list[Any]:
        bound = self._known(feeds)
        if bound is None:
            arrays, dims, need = self._checked(feeds)
        else:
            arrays = list(feeds)
            dims, need = bound
        stream, err = self._thread_state()
        arena = self._arena(need) if need else None
        on_gpu = [a if is_device_array(a) else self._upload(a, stream) for a in arrays]
        upload = functools.partial(self._upload, stream=stream)
        states = [DEVICE_COPIES.read(v, upload) for v in self._variables]
        if self.generated.checks:
            err.copy_to_device(_ERROR_CLEAR, stream=stream)
        returned = self._entry(stream, dims, arena, err, *on_gpu, *states, *self._constants)
        outputs = list(returned[: self._n_outputs])
        if not on_device:
            outputs = [o.copy_to_host(stream=stream) for o in outputs]
        if self.generated.checks:
            flag = err.copy_to_host(stream=stream)
            stream.synchronize()
            if flag[0]:
                raise IndexOutOfRangeError(
                    "an index is out of range (a take, gather or scatter on the GPU)"
                )
        stream.synchronize()
        self._install(returned)
        for i in self._written:
            DEVICE_COPIES.install(self._variables[i], states[i])
        self._ran = True
        return outputs

    def _install_state(self, variable: VariableState, value: Any) -> None:
        DEVICE_COPIES.install(variable, value)

    def _upload(self, array: np.ndarray, stream: Any) -> Any:
        # (np.ascontiguousarray would make a 0-d array 1-d)
        contiguous = array if array.flags.c_contiguous else np.array(array, order="C")
        return self._cuda.to_device(contiguous, stream=stream)
