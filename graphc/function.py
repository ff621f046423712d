"""`graphc.function`: turn symbolic outputs into a callable `Function`.

Orchestration, on top of the IR core: extracts the graph the outputs and
updates need, checks the signature, optimizes the graph and builds its executable
(graphc.runtime): the numba CPU backend (device="cpu"), the numba.cuda backend
(device="cuda") or the numpy reference interpreter (device="reference"). A `Function`
is a record of the graph, its signature and that executable, which validates every
feed (names, dtypes by numpy's same_kind casting rule, ranks, sizes, and every size
the graph requires to agree) before anything is computed.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphc import config
from graphc.errors import (
    ArgumentError,
    ArgumentTypeError,
    DeviceError,
    DTypeError,
    InputError,
    InputTypeError,
    ShapeError,
)
from graphc.ir import Graph
from graphc.runtime.feeds import TensorSpec
from graphc.state import UpdateLocks, VariableState
from graphc.tensor import DEFAULT_BUILDER, Tensor, Variable, as_tensor
from graphc.types import format_shape

DEVICES = ("cpu", "cuda", "reference")
COMPILE_MODES = ("auto", "eager", "background")


def _flatten_outputs(outputs: Any) -> tuple[list[Tensor], list[str], Any]:
    """Output tensors in order, their names, and a recipe to rebuild the user's structure."""
    if isinstance(outputs, Mapping):
        keys = list(outputs)
        tensors = [as_tensor(outputs[k]) for k in keys]
        return tensors, [str(k) for k in keys], ("dict", keys)
    if isinstance(outputs, list | tuple):
        tensors = [as_tensor(o) for o in outputs]
        names = [t.name or f"output_{i}" for i, t in enumerate(tensors)]
        return tensors, names, (type(outputs), len(tensors))
    tensor = as_tensor(outputs)
    return [tensor], [tensor.name or "output_0"], ("single", 1)


def _check_inputs(inputs: Sequence[Any]) -> list[Tensor]:
    if isinstance(inputs, Tensor) or not isinstance(inputs, Sequence):
        raise InputTypeError("inputs must be a list of placeholders")
    names: set[str] = set()
    for item in inputs:
        if isinstance(item, Variable):
            raise InputTypeError(f"{item!r} is a Variable; variables are state, not inputs")
        if not isinstance(item, Tensor) or item.op != "placeholder":
            raise InputTypeError(f"{item!r} is not a placeholder; only placeholders are inputs")
        if item.name in names:
            raise InputError(f"two inputs are named {item.name!r}; input names must be unique")
        names.add(item.name)  # type: ignore[arg-type]
    return list(inputs)


def _check_updates(updates: Mapping[Any, Any] | None) -> list[tuple[Variable, Tensor]]:
    if updates is None:
        return []
    if not isinstance(updates, Mapping):
        raise ArgumentTypeError("updates must be a dict mapping Variables to new values")
    checked = []
    for variable, new_value in updates.items():
        if not isinstance(variable, Variable):
            raise ArgumentTypeError(f"update target {variable!r} is not a Variable")
        new = as_tensor(new_value, like=variable.dtype)
        declared, given = variable.type, new.type
        if given.dtype != declared.dtype:
            raise DTypeError(
                f"update of variable {variable.name!r} ({declared}) has dtype "
                f"{given.dtype.name}; cast it with .astype({declared.dtype.name!r})"
            )
        if given.ndim != declared.ndim or any(
            isinstance(g, int) and g != d for g, d in zip(given.shape, declared.shape, strict=True)
        ):
            raise ShapeError(
                f"update of variable {variable.name!r} ({declared}) has shape "
                f"{format_shape(given.shape)}"
            )
        checked.append((variable, new))
    return checked


def _check_optimize(optimize: Any) -> tuple[str, ...]:
    from graphc.passes import DEFAULT_PIPELINE, PASSES

    if optimize is True:
        return DEFAULT_PIPELINE
    if optimize is False or optimize is None:
        return ()
    if isinstance(optimize, str) or not isinstance(optimize, Sequence):
        raise ArgumentTypeError(
            f"optimize must be True, False or a list of pass names, got {optimize!r}"
        )
    if not all(isinstance(name, str) for name in optimize):
        raise ArgumentTypeError(f"optimize must be a list of pass names, got {optimize!r:.60}")
    unknown = [name for name in optimize if name not in PASSES]
    if unknown:
        raise ArgumentError(f"unknown pass(es) {unknown}; passes are {', '.join(PASSES)}")
    return tuple(optimize)


def restructurer(structure: Any) -> Callable[[list[Any]], Any]:
    """A function from the list of results to the user's output structure."""
    kind, detail = structure
    if kind == "single":
        return operator.itemgetter(0)
    if kind == "dict":
        keys = tuple(detail)
        return lambda results: dict(zip(keys, results, strict=True))
    return kind  # list or tuple


class Function:
    """A compiled graph: call it with numpy arrays, get numpy arrays back.

    Attributes
    ----------
    graph : Graph
        The IR that runs (nodes numbered 0, 1, ... in order).
    inputs, outputs : tuple of TensorSpec
        The signature.
    """

    def __init__(
        self,
        graph: Graph,
        inputs: tuple[TensorSpec, ...],
        outputs: tuple[TensorSpec, ...],
        structure: Any,
        states: dict[int, VariableState],
        device: str,
        pipeline: tuple[str, ...],
        pass_report: Any,
        compile_mode: str = "auto",
    ) -> None:
        self.graph = graph
        self.compile_mode = compile_mode
        self._pass_report = pass_report
        self.inputs = inputs
        self.outputs = outputs
        self.device = device
        self.pipeline = pipeline
        self._structure = structure
        self._variables = states  # variable node id of `graph` -> its state
        self._restructure = restructurer(structure)
        self._defined = (graph, True)  # what graphc.save writes: see saved_form
        self._defined_states = states
        self._executable = _build_executable(graph, inputs, states, device, compile_mode)
        self._collect = self._executable.feeds.collect  # (keyword arguments -> feeds)
        self._arity = len(inputs)
        self._fast = self._executable.fast_path(self._restructure, single=structure[0] == "single")

    def __repr__(self) -> str:
        signature = ", ".join(str(s) for s in self.inputs)
        results = ", ".join(str(s) for s in self.outputs)
        return f"<graphc.Function ({signature}) -> ({results}) on {self.device}>"

    @property
    def structure(self) -> Any:
        """How outputs are returned: ("single", 1), (list or tuple, n) or ("dict", keys)."""
        return self._structure

    def saved_form(self) -> tuple[Graph, bool]:
        """The graph graphc.save writes and whether it is already optimized: the graph
        as defined, or the optimized one of a function loaded from an optimized file."""
        return self._defined

    def variables_by_node(self) -> dict[int, VariableState]:
        """The state of each variable of the saved graph, by variable node id."""
        return dict(self._defined_states)

    def update_locks(self) -> UpdateLocks:
        """The update locks of every variable this function uses (graphc.save holds them
        to read a consistent set of values)."""
        return UpdateLocks(self._defined_states.values())

    def optimized(self) -> Function:
        """This function with its optimized graph as the one graphc.save writes (what
        `graphc optimize` saves): loading that file skips the passes."""
        graph = self.graph.replace(memory=None)
        fn = assemble(
            graph,
            self._variables,
            [spec.name for spec in self.outputs],
            self._structure,
            self.device,
            self.pipeline,
            optimized=True,
            compile_mode=self.compile_mode,
        )
        fn._pass_report = self._pass_report
        return fn

    def report(self) -> Any:
        """What each optimization pass did and, once the first call has compiled it, how
        each kernel was compiled: a `Report` (a PassReport), whose str() is two tables."""
        from graphc.passes.manager import PassReport

        passes = self._pass_report if isinstance(self._pass_report, PassReport) else None
        executable = self._executable
        kernels = tuple(getattr(executable, "compile_report", ()))
        return _report_type()(
            records=passes.records if passes is not None else (),
            kernels=kernels,
            entry_seconds=getattr(executable, "entry_seconds", None),
        )

    @property
    def compiled(self) -> str:
        """Which code answers calls: "pending" (nothing compiled yet: the first call
        or `wait()` compiles), "interpreted" (compile="background": the compiled
        kernels, driven from Python while the entry compiles in another process; the
        results are bit-identical), "native" (the compiled entry) or "reference"
        (device="reference", the numpy interpreter). On device="cuda": "pending",
        then "native"."""
        return str(self._executable.state)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the compiled entry answers calls: compile now if no call has
        (on device="cpu"), or wait for the background compile; True once `compiled`
        is "native" (or "reference"), False if `timeout` seconds passed first."""
        if timeout is not None and not (isinstance(timeout, int | float) and timeout >= 0):
            raise ArgumentError(f"timeout must be a number of seconds >= 0, got {timeout!r:.60}")
        if self.device != "cpu":
            return True
        return bool(self._executable.wait(timeout))

    def profile(self, *args: Any, runs: int = 10, trace: Any = None, **kwargs: Any) -> Any:
        """Time each kernel and library call of `runs` calls with these arguments (after
        one untimed call): a `Profile`, whose str() is a table sorted by time, and with
        `trace` a path, a Chrome trace written there (Perfetto opens it). The calls are
        real: variable updates apply. The statements run through the Python entry
        (runtime/interpreted.py) with a clock around each, so the time between them is
        Python's, not the compiled entry's; device="cpu" only. (An input named `runs`
        or `trace` is passed positionally.)"""
        if self.device != "cpu":
            raise DeviceError(f"profile() times CPU kernels; this function runs on {self.device}")
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
            raise ArgumentError(f"runs must be an int >= 1, got {runs!r:.60}")
        feeds = tuple(self._collect(args, kwargs))
        result = self._executable.profile(feeds, runs)
        if trace is not None:
            result.save_trace(trace)
        return result

    @property
    def source(self) -> str:
        """The generated kernel source (readable Python, the IR line above each statement);
        empty for device="reference", which runs the numpy reference interpreter."""
        generated = self._executable.generated
        return "" if generated is None else generated.listing

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the graph: inputs positionally in `inputs` order or by name."""
        if kwargs or len(args) != self._arity:
            args = tuple(self._collect(args, kwargs))
        return self._fast(args)

    def run_on_device(self, *args: Any, **kwargs: Any) -> Any:
        """Run like a call, but leave the outputs on the GPU: numba device arrays (which
        CuPy, PyTorch and numba take without a copy through __cuda_array_interface__),
        in the output structure. Only for device="cuda"."""
        if self.device != "cuda":
            raise DeviceError(
                f"run_on_device needs device='cuda'; this function runs on {self.device}"
            )
        feeds = tuple(self._collect(args, kwargs))
        return self._restructure(self._executable.run_on_device(feeds))


@functools.cache
def _report_type() -> type:
    from graphc.passes.manager import PassReport

    @dataclass(frozen=True)
    class Report(PassReport):
        """What the passes did (the PassReport's rows), then each kernel's compile:
        `kernels` holds runtime.compile.Compiled records (origin "process": compiled
        before in this process, "cache": loaded from the disk cache, "compiled":
        compiled by this process, "worker": compiled by a helper process);
        `entry_seconds` is the first call's entry compile and run."""

        kernels: tuple = ()
        entry_seconds: float | None = None

        @property
        def origins(self) -> dict[str, int]:
            counts: dict[str, int] = {}
            for k in self.kernels:
                counts[k.origin] = counts.get(k.origin, 0) + 1
            return counts

        def __str__(self) -> str:
            text = PassReport.__str__(self)
            if not self.kernels:
                return text
            lines = [text, "", f"{'kernel':<32} {'origin':<9} {'ms':>8}  ops"]
            for k in sorted(self.kernels, key=lambda k: -k.seconds):
                lines.append(f"{k.name:<32} {k.origin:<9} {k.seconds * 1000:>8.1f}  {k.what}")
            counts = ", ".join(f"{n} {origin}" for origin, n in sorted(self.origins.items()))
            total = sum(k.seconds for k in self.kernels)
            lines.append(f"{len(self.kernels)} kernels ({counts}), {total:.2f} s here")
            if self.entry_seconds is not None:
                lines.append(f"entry: compiled and first run in {self.entry_seconds:.2f} s")
            return "\n".join(lines)

    return Report


def _build_executable(
    graph: Graph,
    inputs: tuple[TensorSpec, ...],
    states: dict[int, VariableState],
    device: str,
    compile_mode: str,
) -> Any:
    """The executable that runs `graph` (optimized and numbered) on `device`: built from
    the graph, its signature's inputs, the variable states by node id and, on "cpu" and
    "cuda", the module generated for it."""
    if device == "cpu":
        return _compile(graph, inputs, states, compile_mode)
    if device == "cuda":
        return _compile_cuda(graph, inputs, states)
    from graphc.runtime.base import ReferenceExecutable

    return ReferenceExecutable(graph, inputs, states)


def _compile(
    graph: Graph,
    inputs: tuple[TensorSpec, ...],
    states: dict[int, VariableState],
    compile_mode: str,
) -> Any:
    """Lower the optimized graph to numba code and load it (the CPU backend)."""
    import numba

    from graphc.kernels import plan
    from graphc.kernels.cpu import codegen, threadsafe_layer
    from graphc.runtime.executable import Executable

    program = plan.plan(graph)
    mode = config.parallel_mode()
    parallel = mode == "1" or (mode == "auto" and numba.config.NUMBA_NUM_THREADS > 1)
    parallel = parallel and threadsafe_layer()
    generated = codegen.generate(
        program, parallel=parallel, min_parallel=config.parallel_min_elements()
    )
    return Executable(generated, inputs, states, compile_mode)


def _compile_cuda(
    graph: Graph, inputs: tuple[TensorSpec, ...], states: dict[int, VariableState]
) -> Any:
    """Lower the optimized graph to numba.cuda kernels and load them (the CUDA backend)."""
    from graphc.kernels import plan
    from graphc.kernels.cuda import codegen
    from graphc.runtime.cuda import CudaExecutable

    generated = codegen.generate(plan.plan(graph))
    return CudaExecutable(generated, inputs, states)


def check_device(device: str | None) -> str:
    """`device`, or the default device when None; raises ArgumentError for a device graphc
    does not know and GraphcError (saying why) for "cuda" where no GPU is usable."""
    device = config.default_device() if device is None else device
    if not isinstance(device, str):
        raise ArgumentTypeError(f"device must be a str, got {device!r:.60}")
    if device not in DEVICES:
        raise ArgumentError(
            f"device must be one of {', '.join(map(repr, DEVICES))}; got {device!r}"
        )
    if device == "cuda":
        from graphc.runtime.cuda import require

        require()
    return device


def check_compile(mode: Any) -> str:
    """`mode` if it is one of COMPILE_MODES; ArgumentError otherwise."""
    if mode not in COMPILE_MODES:
        raise ArgumentError(
            f"compile must be one of {', '.join(map(repr, COMPILE_MODES))}; got {mode!r:.60}"
        )
    return str(mode)


def function(
    inputs: Sequence[Tensor],
    outputs: Any,
    updates: Mapping[Any, Any] | None = None,
    *,
    device: str | None = None,
    optimize: Any = True,
    compile: str = "auto",
) -> Function:
    """Compile symbolic `outputs` of placeholder `inputs` into a callable Function.

    Parameters
    ----------
    inputs : list of placeholders
        The call's arguments, in order (may be empty; an unused input is allowed).
    outputs : Tensor, list/tuple of Tensors, or dict of Tensors
        What a call returns, as numpy arrays in the same structure.
    updates : dict Variable -> Tensor, optional
        New variable values, all computed from the old values, assigned after the outputs.
    device : "cpu" (the default), "cuda" or "reference"
        Where the graph runs: "cpu" compiles it with numba (kernels/cpu/), "cuda" with
        numba.cuda for an NVIDIA GPU (kernels/cuda/; GraphcError when none is usable),
        "reference" runs the numpy reference interpreter (for debugging). The environment variable
        GRAPHC_DEVICE changes the default.
    optimize : True, False or a list of pass names
        The optimization passes to run.
    compile : "auto" (the default), "eager" or "background"
        When the CPU entry function compiles. "eager": at the first call (or `wait()`),
        which returns once it is compiled. "background": the first call compiles only
        the kernels and answers at once, running them from Python, while the entry
        compiles in another process; calls switch to it between two calls. Results are
        bit-identical either way. "auto": "eager" for an entry that compiles in about a
        second or less, else "background" (a large graph's entry takes numba tens of
        seconds; its kernels compile in parallel, in seconds). `fn.compiled` says which
        runs; `fn.wait()` blocks until the compiled entry does. Other devices compile
        eagerly.
    """
    device = check_device(device)
    compile_mode = check_compile(compile)
    pipeline = _check_optimize(optimize)
    input_tensors = _check_inputs(inputs)
    output_tensors, output_names, structure = _flatten_outputs(outputs)
    update_pairs = _check_updates(updates)
    graph, states = DEFAULT_BUILDER.extract(input_tensors, output_tensors, update_pairs)
    declared = {v.node for v in graph.inputs}
    undeclared = [n.name for n in graph.nodes if n.op == "placeholder" and n.id not in declared]
    if undeclared:
        raise InputError(
            f"the outputs need placeholder(s) {undeclared}, which are not among the inputs"
        )
    return assemble(
        graph, states, output_names, structure, device, pipeline, compile_mode=compile_mode
    )


def assemble(
    defined: Graph,
    states: Mapping[int, VariableState],
    output_names: Sequence[str],
    structure: Any,
    device: str,
    pipeline: tuple[str, ...],
    *,
    optimized: bool = False,
    compile_mode: str = "auto",
) -> Function:
    """The Function of an extracted graph whose variable nodes have `states` (by node
    id): optimized by `pipeline` (only its memory planning when `optimized` says the
    passes already ran), numbered afresh, then compiled for `device`.
    `graphc.function` and `graphc.load` both end here."""
    from graphc.passes import run_pipeline

    passes = tuple(p for p in pipeline if p == "plan_memory") if optimized else pipeline
    optimized_graph, pass_report = run_pipeline(defined, passes)
    graph, new_id = optimized_graph.renumbered()
    used = {new_id[n.id]: states[n.id] for n in optimized_graph.variables}
    input_specs = tuple(
        TensorSpec.of(defined.node(v).attrs["name"], defined.type_of(v)) for v in defined.inputs
    )
    output_specs = tuple(
        TensorSpec.of(name, defined.type_of(v))
        for name, v in zip(output_names, defined.outputs, strict=True)
    )
    fn = Function(
        graph,
        input_specs,
        output_specs,
        structure,
        used,
        device,
        pipeline,
        pass_report,
        compile_mode,
    )
    fn._defined = (defined, optimized)
    fn._defined_states = {n.id: states[n.id] for n in defined.nodes if n.op == "variable"}
    return fn


__all__ = ["Function", "TensorSpec", "function"]
