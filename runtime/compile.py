"""Compiling a graph's kernels ahead of its entry, on every core.

Part of graphc.runtime. The CPU code generator writes each distinct kernel as a numba
function alone in a module (kernels/cpu/codegen.Kernel) with the exact types its call
site passes. Before the entry is compiled, `compile_kernels` compiles every kernel the
process does not have yet, most costly first, in this process and in forked children
(one per extra core, `GRAPHC_COMPILE_WORKERS`): each takes the next kernel nobody has
taken from a shared counter as soon as it is free, so that no process waits on a
share it misjudged. A child compiles into numba's on-disk cache and exits, and this
process loads that code from the cache. The entry then calls compiled kernels by
address (kernels/cpu/lib.invoke). The library helpers a dry run of the Python entry
finds (runtime/interpreted.helper_calls) are compiled with the kernels.

Nothing depends on the children: a kernel a child did not deliver (it failed, was
killed, or took too long) is compiled here, and every result comes from this process's
own dispatchers. Kernels already in the cache load in milliseconds wherever they were
compiled, by this graph or any other.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba import types
from numba.core.compiler_lock import global_compiler_lock
from numba.core.runtime import rtsys

from graphc.kernels.cpu import lib
from graphc.kernels.cpu.codegen import Kernel, Param
from graphc.runtime import cache

CHILD_GRACE, CHILD_FACTOR = 60.0, 4.0  # a child's time limit: grace + factor * ours
# fewer missing kernels than this compile here: forking and loading back cost more
MIN_SHARED = 2
HELPER_COST = 300  # a library helper's guessed cost, in kernel-source lines


@dataclass(frozen=True)
class Compiled:
    """What happened to one kernel: its name, what it runs, where its code came from
    ("process": compiled before in this process; "cache": loaded from the disk cache;
    "compiled": compiled here; "worker": compiled by a child, loaded from the cache)
    and the seconds this process spent on it."""

    name: str
    what: str
    origin: str
    seconds: float


def workers() -> int:
    """How many processes compile at once: GRAPHC_COMPILE_WORKERS, else the usable CPUs
    (at most 8); 1 where processes cannot be forked."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    configured = os.environ.get("GRAPHC_COMPILE_WORKERS", "").strip()
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    return max(1, min(usable, 8))


def numba_type(param: Param) -> types.Type:
    """The numba type of a kernel parameter (see codegen.Arg)."""
    kind = param[0]
    if kind == "array":
        _, dtype, ndim, layout = param
        return types.Array(numba.from_dtype(np.dtype(dtype)), ndim, layout)
    if kind == "scalar":
        return numba.from_dtype(np.dtype(param[1]))
    if kind == "index":
        return types.intp
    if kind == "sizes":
        return types.Tuple([types.intp] * param[1]) if param[1] else types.Tuple(())
    raise ValueError(f"unknown kernel parameter {param!r}")


def kernel_dispatcher(kernel: Kernel) -> Any:
    """The numba dispatcher of `kernel` (its module loaded once per process)."""
    return cache.load_generated(kernel.source).kernel


def signature(kernel: Kernel) -> tuple[types.Type, ...]:
    """The numba types `kernel` is compiled for and called with."""
    return tuple(numba_type(p) for p in kernel.params)


@dataclass(frozen=True)
class _Unit:
    """One compile: a dispatcher and the argument types to compile it for."""

    name: str
    what: str
    dispatcher: Any
    argtypes: tuple
    cost: int  # a guess at its compile time: the costliest are taken first


def _kernel_unit(kernel: Kernel) -> _Unit:
    cost = kernel.source.count("\n") * (4 if kernel.parallel else 1)
    return _Unit(kernel.name, kernel.what, kernel_dispatcher(kernel), signature(kernel), cost)


def _helper_unit(dispatcher: Any, argtypes: tuple) -> _Unit:
    name = f"{dispatcher.py_func.__module__}.{dispatcher.py_func.__name__}"
    return _Unit(name, "library helper", dispatcher, argtypes, HELPER_COST)


class _Claims:
    """The shared counter the processes compiling one graph take units from, so that
    each takes the next unit as soon as it is free, most costly first, whatever the
    real cost of each turns out to be (made before the fork, shared with the children)."""

    def __init__(self, shared: bool) -> None:
        self._next = multiprocessing.get_context("fork").Value("q", 0) if shared else None
        self._taken = 0  # (alone: no lock needed)

    def take(self, total: int) -> int | None:
        """The index of the next unit nobody has taken, or None when all are taken."""
        if self._next is None:
            self._taken += 1
            return self._taken - 1 if self._taken <= total else None
        with self._next.get_lock():
            index = int(self._next.value)
            if index >= total:
                return None
            self._next.value = index + 1
            return index


def _child(
    work: Sequence[tuple[Any, tuple]], claims: _Claims | None = None
) -> None:  # pragma: no cover - a forked child
    # (dispatchers resolved before the fork: the child takes none of this process's locks
    # but numba's compile lock, which the forking thread held, so it is the child's)
    if claims is None:
        for dispatcher, argtypes in work:
            dispatcher.compile(argtypes)
        return
    while (index := claims.take(len(work))) is not None:
        dispatcher, argtypes = work[index]
        dispatcher.compile(argtypes)


def compile_kernels(
    kernels: Sequence[Kernel],
    helpers: Sequence[tuple[Any, tuple]] = (),
    processes: int | None = None,
) -> list[Compiled]:
    """Compile every kernel, and every (library helper dispatcher, argument types) of
    `helpers`, that this process lacks, in parallel (see the module docstring)."""
    processes = workers() if processes is None else processes
    report: list[Compiled] = []
    missing = []
    units = [_kernel_unit(k) for k in kernels] + [_helper_unit(d, t) for d, t in helpers]
    for unit in units:
        start = time.perf_counter()
        if unit.argtypes in unit.dispatcher.overloads:
            report.append(Compiled(unit.name, unit.what, "process", 0.0))
        elif cached(unit.dispatcher, unit.argtypes):  # (no child needed to load it)
            report.append(Compiled(unit.name, unit.what, "cache", time.perf_counter() - start))
        else:
            missing.append(unit)
    missing.sort(key=lambda u: u.cost, reverse=True)
    claims, children = _share([(u.dispatcher, u.argtypes) for u in missing], processes)
    began = time.perf_counter()
    done_here: set[int] = set()
    # this process takes units too (all of them when it has no children)
    while (index := claims.take(len(missing))) is not None:
        unit = missing[index]
        start = time.perf_counter()
        unit.dispatcher.compile(unit.argtypes)
        report.append(Compiled(unit.name, unit.what, "compiled", time.perf_counter() - start))
        done_here.add(index)
    # the children take units as they free up: one still busy long after this process
    # ran out of units is stuck, and what it did not deliver is compiled here
    patience = CHILD_GRACE + CHILD_FACTOR * (time.perf_counter() - began)
    delivered = True
    for child in children:
        child.join(max(1.0, patience - (time.perf_counter() - began)))
        delivered = delivered and child.exitcode == 0
        if child.is_alive():
            child.kill()
            child.join()
    for index, unit in enumerate(missing):
        if index in done_here:
            continue
        start = time.perf_counter()
        if cached(unit.dispatcher, unit.argtypes):
            origin = "worker" if delivered else "cache"
        else:
            unit.dispatcher.compile(unit.argtypes)
            origin = "compiled"
        report.append(Compiled(unit.name, unit.what, origin, time.perf_counter() - start))
    return report


def _share(work: list[tuple[Any, tuple]], processes: int) -> tuple[_Claims, list[Any]]:
    """The claims on `work` and the children started to take from them (none for too
    little work, or where no child can be forked)."""
    if processes < 2 or len(work) < MIN_SHARED:
        return _Claims(shared=False), []
    try:
        claims = _Claims(shared=True)
    except OSError:  # (no shared memory for the counter's lock here: compile alone)
        return _Claims(shared=False), []
    _warm_up()
    children = []
    for _ in range(min(processes, len(work)) - 1):
        child = fork_compile(work, claims)
        if child is None:
            break
        children.append(child)
    return claims, children


@functools.cache
def _warm_up() -> None:
    """Compile one trivial function, once per process, before forking: numba's first
    compile in a process sets up its typing and code generation (about 0.25 s here),
    which every forked child would otherwise pay again."""
    numba.njit(cache=False)(_trivial).compile((types.intp,))


def _trivial(n: int) -> int:
    return n + 1


def fork_compile(work: Sequence[tuple[Any, tuple]], claims: _Claims | None = None) -> Any:
    """A started child process compiling each (dispatcher, signature) of `work` into
    numba's disk cache (with `claims`, each unit it takes from them), or None where a
    process cannot be forked."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("fork")
    # holding numba's compile lock while forking: no other thread of this process is
    # half-way through a compile the child would inherit
    with global_compiler_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # (fork with threads)
        try:
            child = context.Process(target=_child, args=(list(work), claims), daemon=True)
            child.start()
        except OSError:
            return None
    return child


def cached(dispatcher: Any, argtypes: tuple) -> bool:
    """Load `dispatcher`'s code for `argtypes` from numba's disk cache if it is there
    (without compiling it); whether the dispatcher has it now.

    Unlike numba's own Cache.load_overload, this does not refresh the target context
    first: cached code needs numba's runtime (NRT) and its code generator only, and
    the refresh imports every registry of numba's typing and lowering (0.3 s, half of
    a warm process's first result). A compile, which needs them, refreshes it itself."""
    if argtypes in dispatcher.overloads:
        return True
    with global_compiler_lock:
        rtsys.initialize(dispatcher.targetctx)  # (what the refresh does first)
        # (numba's own Dispatcher.compile first step, without the compile after it)
        try:
            result = dispatcher._cache._load_overload(argtypes, dispatcher.targetctx)
        except OSError:  # (numba's own load guards against these the same way)
            result = None
        if result is None:
            return False
        dispatcher._cache_hits[argtypes] += 1
        dispatcher.targetctx.insert_user_function(
            result.entry_point, result.fndesc, [result.library]
        )
        dispatcher.add_overload(result)
        return True


def in_cache(dispatcher: Any, argtypes: tuple) -> bool:
    """Whether `dispatcher` has code for `argtypes`, here or in numba's disk cache,
    without loading it (an entry's code can only be loaded once the kernels it calls
    are registered: see register)."""
    if argtypes in dispatcher.overloads:
        return True
    cache = dispatcher._cache
    with global_compiler_lock:
        try:  # (numba's own lookup in Cache._load_overload, without the load after it)
            key = cache._index_key(argtypes, dispatcher.targetctx.codegen())
            return key in cache._cache_file._load_index()
        except Exception:  # no disk cache, or one unreadable: it will be compiled
            return False


def launch_threads(source: str) -> None:
    """Start numba's thread pool if code of `source` (a generated module and the
    kernels it calls) may run a `prange`. numba starts it when it compiles such code,
    or loads from its cache a function that is itself parallel, but not when it loads
    an entry that calls a parallel library helper (`conv2d_par_c`, linked into the
    entry's code): that entry would call the pool through a null address."""
    if "prange(" in source or "_par_c(" in source:
        from numba.np.ufunc import parallel

        parallel._launch_threads()


def register(kernels: Sequence[Kernel]) -> None:
    """Register where each kernel's compiled code is, under its symbol, for the entries
    that call it (kernels/cpu/lib.invoke); every kernel must be compiled."""
    for kernel in kernels:
        lib.register(kernel.symbol, kernel_dispatcher(kernel), signature(kernel))
