"""The executable seam: what every backend's executable shares.

Part of graphc.runtime. A Function holds one executable (graphc/function.py builds it
from the optimized graph, the generated module and the variable states); a call hands it
the feeds in input order. `BaseExecutable` owns what does not depend on where the code
runs:

- the feed check: a `FeedChecker` (feeds.py) over the graph's signature, which converts
  feeds and binds every run-time size, raising InputError before any kernel runs;
- the shape key: the dims and arena size of feed shapes checked before, so that a call
  with known shapes skips the full check (each backend says which feeds may take it:
  see `_known`);
- the arena: per-thread scratch memory of the generated module's `arena_bytes(dims)`,
  grown to the largest call's need and reused (a host array, unless the backend
  allocates its own kind);
- the update locks: a call of a graph with updates holds the locks of all its variables
  from reading the old values to installing the new ones (graphc.state);
- installing updates: the results after the outputs are the new variable states.

The backends, runtime/executable.py (numba CPU) and runtime/cuda.py (numba.cuda),
subclass it with what truly differs; `ReferenceExecutable` (device="reference") runs the
numpy reference interpreter and uses only the feed check, the locks and installing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from graphc import interpret
from graphc.ir import Graph
from graphc.runtime.feeds import FeedChecker, TensorSpec
from graphc.state import NO_LOCKS, UpdateLocks, VariableState

MAX_SHAPE_KEYS = 256  # feed shapes remembered per executable (then forgotten, all at once)


def _no_arena(dims: Any) -> int:
    return 0


def generated_layout(generated: Any, module: Any) -> dict[str, Any]:
    """BaseExecutable's keyword arguments for a loaded generated module, of either
    backend: its sizes, arena, variables, returned new states and in-place updates."""
    program = generated.program
    return {
        "dims": program.dims,
        "arena_bytes": module.arena_bytes,
        "variables": program.variables,
        "new_states": generated.new_states,
        "in_place": sorted(set(program.state_of.values())),
    }


class BaseExecutable:
    """The feed check, shape keys, arenas, update locks and installing of new states,
    for a graph whose variable nodes have `states` (see the module doc)."""

    generated: Any = None  # the generated module's description (codegen.Generated)
    source = ""  # its source

    def __init__(
        self,
        graph: Graph,
        inputs: Sequence[TensorSpec],
        states: Mapping[int, VariableState],
        device: str,
        *,
        dims: Sequence[Any] = (),
        arena_bytes: Callable[[Any], int] = _no_arena,
        variables: Sequence[int] = (),
        new_states: Sequence[int] = (),
        in_place: Sequence[int] = (),
    ) -> None:
        self.graph = graph
        self.feeds = FeedChecker(graph, tuple(inputs), states, device)
        self._dims = tuple(dims)  # slot k of a call's dims holds the size of dims[k]
        self._static = not self._dims  # no run-time sizes
        self._arena_bytes = arena_bytes
        self._n_outputs = len(graph.outputs)
        self._variables = tuple(states[i] for i in variables)  # the entry's, in order
        self._new_states = tuple(states[i] for i in new_states)  # returned after the outputs
        self._in_place = tuple(states[i] for i in in_place)  # written where they lie
        # those whose host array the entry writes: marked written before and after
        self._host_written: tuple[VariableState, ...] = ()
        # a call that updates variables holds their locks from reading to writing them
        self._locks = UpdateLocks(states.values()) if graph.updates else NO_LOCKS
        self._locked = bool(self._locks)
        self._bound: dict[tuple, tuple[Any, int]] = {}  # feed shapes -> (dims, arena bytes)
        self._local = threading.local()  # this thread's arena (and a backend's own state)

    # ---- a call

    def __call__(self, feeds: tuple[Any, ...]) -> list[Any]:
        """Run one call with the feeds in input order: the outputs, in order. Variable
        updates are applied."""
        # (_holding_locks(self._call, feeds), written out: the CPU's hot path)
        if self._locked:
            with self._locks:
                try:
                    return self._call(feeds)
                finally:  # (again: a reader may have copied a host array mid-write)
                    for variable in self._host_written:
                        variable.wrote_host_state()
        return self._call(feeds)

    def _holding_locks(self, run: Callable[..., Any], *args: Any) -> Any:
        """`run(*args)`, holding the update locks when the graph updates variables (and
        marking the host arrays written in place as written, after it)."""
        if self._locked:
            with self._locks:
                try:
                    return run(*args)
                finally:
                    for variable in self._host_written:
                        variable.wrote_host_state()
        return run(*args)

    def _call(self, feeds: tuple[Any, ...]) -> list[Any]:
        """One call (the caller holds the update locks it needs)."""
        raise NotImplementedError

    def fast_path(
        self, finish: Callable[[list[Any]], Any], single: bool = False
    ) -> Callable[..., Any]:
        """A function of the feed tuple returning `finish(outputs)` (`single`: finish
        returns the one output as it is, which a backend may skip)."""
        return lambda feeds: finish(self(feeds))

    @property
    def state(self) -> str:
        """What answers calls (the Function's `compiled`)."""
        raise NotImplementedError

    # ---- shape keys and arenas

    def _known(self, feeds: tuple[Any, ...]) -> tuple[Any, int] | None:
        """The dims and arena size of feeds whose shapes were checked before (a backend
        narrows this to the feeds its entry cannot misread)."""
        try:
            return self._bound.get(tuple([f.shape for f in feeds]))
        except AttributeError:  # a list or a number: the full check converts it
            return None

    def _checked(self, feeds: tuple[Any, ...]) -> tuple[list[Any], Any, int]:
        """The full check: the converted feeds, the call's dims and its arena size; host
        feed shapes are remembered for `_known`."""
        arrays, bindings = self.feeds.checked_feeds(feeds)
        dims = self._pack_dims([bindings[s] for s in self._dims])
        need = int(self._arena_bytes(dims))
        if all(type(a) is np.ndarray for a in arrays):
            if len(self._bound) >= MAX_SHAPE_KEYS:
                self._bound.clear()
            self._bound[tuple(a.shape for a in arrays)] = (dims, need)
        return arrays, dims, need

    def _host_constants(self) -> tuple[np.ndarray, ...]:
        """The constant arrays the generated entry takes, C-contiguous."""
        by_id = self.graph.by_id
        return tuple(
            np.array(by_id[i].attrs["value"].array, order="C") for i in self.generated.constants
        )

    def _pack_dims(self, sizes: list[int]) -> Any:
        """The dims argument of the generated entry."""
        return tuple(int(size) for size in sizes)

    def _arena(self, need: int) -> Any:
        """This thread's arena, of at least `need` bytes."""
        local = self._local
        arena = getattr(local, "arena", None)
        if arena is None or arena.size < need:
            arena = local.arena = self._new_arena(need)
        return arena

    def _new_arena(self, need: int) -> Any:
        """A new arena of at least `need` bytes, for this thread."""
        return np.empty(max(need, 1), np.uint8)

    # ---- installing updates

    def _install(self, returned: Sequence[Any]) -> list[Any]:
        """The outputs among a call's results (the outputs, then the new states), after
        installing the new states."""
        n = self._n_outputs
        for variable, value in zip(self._new_states, returned[n:], strict=True):
            self._install_state(variable, value)
        return list(returned[:n])

    def _install_state(self, variable: VariableState, value: Any) -> None:
        """Make `value` the variable's new state (a host array here)."""
        variable.set_state(value)


class ReferenceExecutable(BaseExecutable):
    """device="reference": the numpy reference interpreter (graphc/interpret.py) runs
    the graph, every call fully checked."""

    def __init__(
        self, graph: Graph, inputs: Sequence[TensorSpec], states: Mapping[int, VariableState]
    ) -> None:
        super().__init__(
            graph, inputs, states, "reference", new_states=[var for var, _ in graph.updates]
        )
        self._states = dict(states)

    @property
    def state(self) -> str:
        return "reference"

    def _call(self, feeds: tuple[Any, ...]) -> list[Any]:
        sources, types = self.feeds.validate(feeds, {})
        for node_id, state in self._states.items():
            sources[node_id] = state.get_state()
        values = interpret.evaluate(self.graph, sources, types)
        outputs = [np.array(values[v], copy=True) for v in self.graph.outputs]
        # (C order: compiled functions read the same arrays)
        new = [np.array(values[v], copy=True, order="C") for _, v in self.graph.updates]
        return self._install([*outputs, *new])
