"""The CPU executable: a compiled graph's numba entry function and what a call needs.

Part of graphc.runtime. An `Executable` is the CPU backend of the executable seam
(base.py, which owns the feed check, the shape keys, the arenas, the update locks and
installing new states); it holds the generated module's `entry` and the constant arrays
it reads, and compiles the entry (eagerly, or in the background), and profiles calls.
A call is:

1. the fast path: when these feed shapes were seen before (or the graph has no
   run-time sizes), look up their `dims` and arena size, take this thread's arena,
   and call `entry` once. numba's dispatcher accepts only the exact types the entry
   was compiled for (C-contiguous arrays of the declared dtypes and ranks), so a
   feed of another dtype, layout or rank never reaches a kernel: it raises TypeError
   before anything runs and the call takes
2. the slow path: the full check of the feeds (which raises InputError for bad feeds)
   converts every feed, binds every run-time size, and the call runs with the converted
   feeds. The first call always takes it; it compiles the entry (or loads it from the
   on-disk cache) for the canonical types and then closes the dispatcher to any other
   signature.

Temporaries live in the per-thread arena. Outputs are always fresh arrays. New
variable states that were not computed in place come back from the entry and are
swapped in; variables updated in place are marked written (graphc.state) before and
after the entry writes them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numba
import numpy as np

from graphc.errors import IndexOutOfRangeError, InputError
from graphc.ir import Value
from graphc.kernels.cpu.codegen import Generated
from graphc.kernels.cpu.lib import FeedShapeError
from graphc.runtime import cache, interpreted
from graphc.runtime.base import BaseExecutable, generated_layout
from graphc.runtime.compile import (
    Compiled,
    cached,
    compile_kernels,
    fork_compile,
    in_cache,
    launch_threads,
    numba_type,
    register,
)
from graphc.runtime.feeds import TensorSpec
from graphc.state import VariableState

_EMPTY_DIMS = np.zeros(0, np.int64)
_COMPILE_LOCK = threading.Lock()
BACKGROUND_LIMIT = 1800.0  # seconds a background compile may take before it is redone here
# compile="auto" compiles an entry of more code than this (Generated.size) in the
# background. numba 0.68 took 0.15 s for a 270-character entry (the W4 add), while at
# 1,250 characters (a 5-block chain) answering from Python first came 0.8 s sooner, and
# the W8 step's 78,000 characters took 35 s; below this, a dry run and a child process
# would gain little.
AUTO_BACKGROUND = 1000


class Executable(BaseExecutable):
    """A loaded entry function and the state a call of it needs (see the module doc)."""

    def __init__(
        self,
        generated: Generated,
        inputs: Sequence[TensorSpec],
        states: Mapping[int, VariableState],
        mode: str = "auto",
    ) -> None:
        for kernel in generated.kernels:  # (the entry imports them)
            cache.load_generated(kernel.source)
        module = cache.load_generated(generated.source)
        graph = generated.program.graph
        super().__init__(graph, inputs, states, "cpu", **generated_layout(generated, module))
        self.source = generated.source
        self.generated = generated
        self._entry = module.entry
        self._takes = (generated.takes_dims, generated.takes_arena)
        self._constants = self._host_constants()
        self._host_written = self._in_place
        self._n_returns = len(generated.returns)
        self._compiled = False
        if mode == "auto":
            mode = "background" if generated.size > AUTO_BACKGROUND else "eager"
        self._mode = mode  # "eager" or "background" (see _first)
        self._python: Any = None  # the Python entry, while the entry compiles elsewhere
        self._background: tuple | None = None  # (argument types, child process, start)
        self._kernels_done = False
        self.compile_report: list[Compiled] = []  # how each kernel was compiled
        self.entry_seconds: float | None = None  # the first call of the entry
        self._static_need = int(self._arena_bytes(_EMPTY_DIMS)) if self._static else 0

    @property
    def entry(self) -> Any:
        """The numba dispatcher of the generated entry function."""
        return self._entry

    def _pack_dims(self, sizes: list[int]) -> np.ndarray:
        return np.array(sizes, dtype=np.int64)

    def _leading(self, dims: np.ndarray, need: int) -> tuple[np.ndarray, ...]:
        takes_dims, takes_arena = self._takes
        if takes_arena:
            return (dims, self._arena(need)) if takes_dims else (self._arena(need),)
        return (dims,) if takes_dims else ()

    def fast_path(
        self, finish: Callable[[list[np.ndarray]], Any], single: bool = False
    ) -> Callable[..., Any]:
        """A function of the feed tuple returning `finish(outputs)`: for the simplest
        graphs (no run-time sizes, no arena, no state) just the dispatch of the entry
        (and with `single`, whose finish returns the one output, nothing else)."""
        simple = (
            self._static
            and self._takes == (False, False)
            and not self._variables
            and self._n_returns == 1
        )
        if not simple:
            return lambda feeds: finish(self(feeds))
        entry, constants = self._entry, self._constants
        if single and not constants:

            def run_single(feeds: tuple[Any, ...]) -> Any:
                if self._compiled:
                    try:
                        return entry(*feeds)
                    except (TypeError, ValueError, IndexError):
                        pass  # the general path tells these apart (and converts feeds)
                return self(feeds)[0]

            return run_single

        def run(feeds: tuple[Any, ...]) -> Any:
            if self._compiled:
                try:
                    return finish([entry(*feeds, *constants)])
                except (TypeError, ValueError, IndexError):
                    pass  # the general path tells these apart (and converts feeds)
            return finish(self(feeds))

        return run

    def _call(self, feeds: tuple[Any, ...]) -> list[np.ndarray]:
        if not self._compiled:
            return self._slow(feeds)
        if self._static:
            dims, need = _EMPTY_DIMS, self._static_need
        else:
            try:  # (the shape key, as _known looks it up: inline on this path)
                bound = self._bound.get(tuple([f.shape for f in feeds]))
            except AttributeError:  # a list or a number: convert it
                bound = None
            if bound is None:
                return self._slow(feeds)
            dims, need = bound
        states = [v.get_state() for v in self._variables] if self._variables else ()
        for variable in self._host_written:
            variable.wrote_host_state()
        try:
            result = self._entry(*self._leading(dims, need), *feeds, *states, *self._constants)
        except TypeError:  # no compiled signature matches: another dtype, layout or rank
            return self._slow(feeds)
        except FeedShapeError:  # (the full check says which feed and why)
            return self._slow(feeds)
        except ValueError as error:
            raise InputError(str(error)) from None
        except IndexError as error:
            raise IndexOutOfRangeError(str(error)) from None
        if self._n_returns == 1 and not self._new_states:
            return [result]
        return self._finish(result)

    def _slow(self, feeds: tuple[Any, ...], entry: Any = None) -> list[np.ndarray]:
        """A call after validating and converting every feed; with `entry`, a Python
        entry function (a profiled one) runs it."""
        arrays, dims, need = self._checked(feeds)
        # the entry takes C-contiguous, writeable arrays (np.ascontiguousarray would also
        # turn a 0-d array into a 1-d one)
        arrays = [
            a if a.flags.c_contiguous and a.flags.writeable else np.array(a, order="C")
            for a in arrays
        ]
        states = [v.get_state() for v in self._variables]
        for variable in self._host_written:
            variable.wrote_host_state()
        rest = (*arrays, *states)
        try:
            if entry is not None:
                with _COMPILE_LOCK:
                    self._kernels_ready()
                result = entry(*self._leading(dims, need), *rest, *self._constants)
            elif self._compiled:
                result = self._entry(*self._leading(dims, need), *rest, *self._constants)
            else:
                result = self._first(dims, need, rest)
        except ValueError as error:
            raise InputError(str(error)) from None
        except IndexError as error:
            raise IndexOutOfRangeError(str(error)) from None
        return self._finish(result)

    def _first(self, dims: np.ndarray, need: int, rest: tuple[Any, ...]) -> Any:
        """A call before the compiled entry runs: compile (eagerly), or answer with the
        Python entry while it compiles in the background."""
        # numba refuses a disabled dispatcher before it looks for a compiled signature:
        # threads racing the first compile wait here instead
        with _COMPILE_LOCK:
            self._kernels_ready(rest, dims)
            args = (*self._leading(dims, need), *rest, *self._constants)
            if self._mode == "background" and not self._compiled:
                self._poll()
                if self._background is None:
                    self._start_background(tuple(numba.typeof(a) for a in args))
            if self._compiled or self._mode != "background":
                start = time.perf_counter()
                result = self._entry(*args)
                if self.entry_seconds is None:
                    self.entry_seconds = time.perf_counter() - start
                self._native()
                return result
            python = self._python
        return python(*self._leading(dims, need), *rest, *self._constants)

    # ---- compiling (under _COMPILE_LOCK)

    def _kernels_ready(self, rest: tuple[Any, ...] | None = None, dims: Any = None) -> None:
        """Compile the kernels and the library helpers the entry will call with these
        arguments (the feeds, states and constants, and its dims), in parallel. The
        helpers' types come from a dry run of the Python entry; the compiled entry
        passes the same ones (numbers as np.intp, never literals), so it compiles none
        of them again (tests/runtime/test_parallel_compile.py)."""
        if self._kernels_done:
            return
        helpers: list = []
        if rest is not None:
            need = int(self._arena_bytes(dims))
            args = (*self._leading(dims, need), *rest, *self._constants)
            # (an entry in numba's disk cache has its helpers' code in it)
            if not in_cache(self._entry, tuple(numba.typeof(a) for a in args)):
                copies = [np.array(a, copy=True) for a in rest]  # (feeds and states)
                dry = (*self._leading(dims, need), *copies, *self._constants)
                helpers = interpreted.helper_calls(self.generated, dry)
        self.compile_report = compile_kernels(self.generated.kernels, helpers)
        register(self.generated.kernels)
        launch_threads(self.generated.listing)
        self._kernels_done = True

    def _native(self) -> None:
        if not self._compiled:
            self._entry.disable_compile()
            self._compiled = True
            self._python = None

    def _start_background(self, argtypes: tuple) -> None:
        """Compile the entry for `argtypes` in a child process, unless numba's cache has
        it; meanwhile calls run the Python entry."""
        if cached(self._entry, argtypes):
            self._background = (argtypes, None, time.perf_counter())
            self._native()
            return
        python = interpreted.python_entry(self.generated)
        child = fork_compile([(self._entry, argtypes)])
        if child is None:  # (no fork here: compile now)
            self._entry.compile(argtypes)
            self._background = (argtypes, None, time.perf_counter())
            self._native()
            return
        self._python = python
        self._background = (argtypes, child, time.perf_counter())

    def _poll(self) -> None:
        """Switch to the compiled entry once the background compile is done: loaded
        from the cache the child filled, or compiled here if the child failed or ran
        past BACKGROUND_LIMIT seconds."""
        if self._background is None or self._compiled:
            return
        argtypes, child, started = self._background
        if child is None:
            return
        if child.exitcode is None:
            if time.perf_counter() - started < BACKGROUND_LIMIT:
                return
            child.kill()
        child.join()
        if not (child.exitcode == 0 and cached(self._entry, argtypes)):
            self._entry.compile(argtypes)
        self._native()

    @property
    def state(self) -> str:
        """What answers calls: "pending" (nothing compiled yet), "interpreted" (the
        Python entry, while the entry compiles in the background) or "native"."""
        if self._compiled:
            return "native"
        return "interpreted" if self._python is not None else "pending"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the compiled entry runs calls (compiling it now if no call has
        started it); False if `timeout` seconds passed first."""
        with _COMPILE_LOCK:
            if self._compiled:
                return True
            if self._background is None:
                self._kernels_ready()
                argtypes = self._entry_types()
                if self._mode == "background":
                    self._start_background(argtypes)
                else:
                    self._entry.compile(argtypes)
                    self._native()
            if self._compiled:
                return True
            _, child, started = self._background or (None, None, 0.0)
        if child is not None:
            # (a child past BACKGROUND_LIMIT is replaced by a compile here: _poll)
            remaining = max(0.0, BACKGROUND_LIMIT - (time.perf_counter() - started))
            child.join(remaining if timeout is None else min(timeout, remaining))
            if child.exitcode is None and timeout is not None and timeout < remaining:
                return False
        with _COMPILE_LOCK:
            self._poll()
        return self._compiled

    def _entry_types(self) -> tuple:
        """The numba types of a call's arguments, as the first call passes them."""

        def array(dtype: Any, ndim: int) -> Any:
            return numba_type(("array", np.dtype(dtype).name, ndim, "C"))

        takes_dims, takes_arena = self._takes
        leading = [array(np.int64, 1)] * takes_dims + [array(np.uint8, 1)] * takes_arena
        graph = self.generated.program.graph
        feeds = [graph.type_of(Value(i)) for i in self.generated.program.inputs]
        return (
            *leading,
            *(array(t.dtype, t.ndim) for t in feeds),
            *(numba.typeof(v.get_state()) for v in self._variables),
            *(numba.typeof(c) for c in self._constants),
        )

    def profile(self, feeds: tuple[Any, ...], runs: int) -> Any:
        """`runs` calls through the profiled Python entry (runtime/interpreted.py)."""
        generated = self.generated

        def run(entry: Any) -> None:
            self._holding_locks(self._slow, feeds, entry)

        with _COMPILE_LOCK:
            self._kernels_ready()
        _, bindings = self.feeds.checked_feeds(feeds)
        sizes = {str(sym): size for sym, size in bindings.items()}
        return interpreted.profile(run, generated, runs, sizes)

    def _finish(self, result: Any) -> list[np.ndarray]:
        return self._install([result] if self._n_returns == 1 else list(result))
