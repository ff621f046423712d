"""The CUDA runtime: runs a generated CUDA module on an NVIDIA GPU (or numba's simulator).

Part of graphc.runtime; with graphc.kernels.cuda the only code that imports numba.cuda,
and only when a function is compiled for device="cuda", so graphc imports and works
without numba-cuda. `require()` says, as a GraphcError, why there is no usable device.

A `CudaExecutable` call:

1. checks the feeds: host arrays (numpy, lists, ...) are validated and converted as on
   the CPU; a feed with ``__cuda_array_interface__`` (numba device arrays, CuPy,
   PyTorch CUDA tensors) is used where it lies, without a copy, after the same checks
   of dtype and shape. A call whose host feeds have shapes and dtypes seen before skips
   the full check (the shape key), as on the CPU;
2. takes this thread's stream, device arena and error flag: concurrent calls from
   several threads each run on their own stream, a thread's calls run in order;
3. copies the host feeds to the device, launches the entry's kernels, and copies the
   outputs back (or leaves them on the device: `on_device=True`), then waits for the
   stream;
4. raises IndexOutOfRangeError if a kernel met a bad index, else installs the new
   variable states. Variables live on the device between calls: they are uploaded on
   first use and copied back only when read on the host (VariableState.get_state).
   A call of a graph with updates holds its variables' update locks throughout.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.errors import DeviceError, IndexOutOfRangeError, InputError
from graphc.runtime import cache
from graphc.state import NO_LOCKS
from graphc.types import Sym

_MAX_SHAPE_KEYS = 256
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


Validate = Callable[[tuple[Any, ...]], tuple[list[Any], dict[Sym, int]]]


class CudaExecutable:
    """A generated CUDA module and the state a call of it needs (see the module doc)."""

    def __init__(
        self,
        generated: Any,
        variables: Sequence[Any],
        constants: Sequence[np.ndarray],
        new_states: Sequence[Any],
        in_place: Sequence[Any],
        validate: Validate,
        input_dtypes: Sequence[np.dtype],
        locks: Any = NO_LOCKS,
    ) -> None:
        from numba import cuda

        self._cuda = cuda
        self._simulated = _simulated()
        self.generated = generated
        self.source = generated.source
        module = cache.load_generated(generated.source)
        self._entry = module.entry
        self._arena_bytes = module.arena_bytes
        self._dims = generated.program.dims
        self._variables = tuple(variables)
        self._constants = tuple(cuda.to_device(np.array(c, order="C")) for c in constants)
        self._new_states = tuple(new_states)
        # variables the entry writes in place (identity: a Tensor's == builds a node)
        self._in_place = [i for i, v in enumerate(variables) if any(v is u for u in in_place)]
        self._n_outputs = len(generated.program.graph.outputs)
        self._validate = validate
        self._locks = locks  # held by a call that updates variables (see graphc.state)
        self._dtypes = tuple(input_dtypes)
        self._bound: dict[tuple, tuple[tuple[int, ...], int]] = {}
        self._local = threading.local()
        self._ran = False  # numba.cuda compiles each kernel at its first launch

    @property
    def state(self) -> str:
        """The state: "pending" until a call has compiled (and run) the kernels, then "native"."""
        return "native" if self._ran else "pending"

    def _thread_state(self, need: int) -> tuple[Any, Any, Any]:
        """This thread's stream, a device arena of at least `need` bytes, the error flag."""
        local = self._local
        stream = getattr(local, "stream", None)
        if stream is None:
            cuda = self._cuda
            stream = local.stream = cuda.stream()
            local.err = cuda.to_device(_ERROR_CLEAR, stream=stream)
            local.arena = None
        arena = local.arena
        if need and (arena is None or arena.size < need):
            arena = local.arena = self._cuda.device_array(need, np.uint8, stream=stream)
        return stream, arena, local.err

    def _known(self, feeds: tuple[Any, ...]) -> tuple[tuple[int, ...], int] | None:
        """The dims and arena size of host feeds whose shapes were checked before."""
        for feed, dtype in zip(feeds, self._dtypes, strict=True):
            if type(feed) is not np.ndarray or feed.dtype != dtype or not feed.flags.c_contiguous:
                return None
        return self._bound.get(tuple(f.shape for f in feeds))

    def __call__(self, feeds: tuple[Any, ...], on_device: bool = False) -> list[Any]:
        """Run one call: the outputs in order, as numpy arrays or (on_device) device
        arrays. Variable updates are applied."""
        with self._locks:
            if self._simulated:
                with _SIMULATOR_TURN:
                    return self._call(feeds, on_device)
            return self._call(feeds, on_device)

    def _call(self, feeds: tuple[Any, ...], on_device: bool) -> list[Any]:
        bound = self._known(feeds)
        if bound is None:
            arrays, bindings = self._validate(feeds)
            dims = tuple(int(bindings[s]) for s in self._dims)
            bound = (dims, int(self._arena_bytes(dims)))
            if all(type(a) is np.ndarray for a in arrays):
                if len(self._bound) >= _MAX_SHAPE_KEYS:
                    self._bound.clear()
                self._bound[tuple(a.shape for a in arrays)] = bound
        else:
            arrays = list(feeds)
        dims, need = bound
        stream, arena, err = self._thread_state(need)
        on_gpu = [a if is_device_array(a) else self._upload(a, stream) for a in arrays]
        upload = functools.partial(self._upload, stream=stream)
        states = [v.device_state(upload) for v in self._variables]
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
        for variable, state in zip(self._new_states, returned[self._n_outputs :], strict=True):
            variable.set_device_state(state)
        for i in self._in_place:
            self._variables[i].set_device_state(states[i])
        self._ran = True
        return outputs

    def _upload(self, array: np.ndarray, stream: Any) -> Any:
        # (np.ascontiguousarray would make a 0-d array 1-d)
        contiguous = array if array.flags.c_contiguous else np.array(array, order="C")
        return self._cuda.to_device(contiguous, stream=stream)
