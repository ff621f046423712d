"""compile="background": calls answered by the Python entry over the compiled kernels
while the entry compiles in another process, bit-identical to the compiled entry;
`Function.compiled` and `Function.wait`."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import strategies
from hypothesis import given, settings

import graphc as gc
from graphc.kernels.cpu import nn
from graphc.runtime import executable


class _HeldChild:
    """Stands in for the process compiling an entry: it finishes when the test says."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.killed = False

    @property
    def exitcode(self) -> int | None:
        return 0 if self.done.is_set() else None

    def join(self, timeout: float | None = None) -> None:
        self.done.wait(timeout)

    def kill(self) -> None:
        self.killed = True
        self.done.set()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> list[_HeldChild]:
    """Background compiles that never finish by themselves, and an entry that is never
    found in numba's cache until its child finished: every function made with
    compile="background" answers from Python until the test releases its child."""
    children: list[_HeldChild] = []
    real_cached = executable.cached

    def fork_compile(work):  # type: ignore[no-untyped-def]
        children.append(_HeldChild())
        return children[-1]

    def cached(dispatcher, argtypes):  # type: ignore[no-untyped-def]
        if not children or not all(c.done.is_set() for c in children):
            return False
        return real_cached(dispatcher, argtypes)

    monkeypatch.setattr(executable, "fork_compile", fork_compile)
    monkeypatch.setattr(executable, "cached", cached)
    real_in_cache = executable.in_cache

    def in_cache(dispatcher, argtypes):  # type: ignore[no-untyped-def]
        if not children or not all(c.done.is_set() for c in children):
            return False  # (nor is the entry there before the call)
        return real_in_cache(dispatcher, argtypes)

    monkeypatch.setattr(executable, "in_cache", in_cache)
    return children


def _mlp_step(mode: str, seed: int = 0, dense: bool = True) -> gc.Function:
    """A small classifier's Adam step: gather, matmuls (unless not `dense`: a graph
    with BLAS calls runs its loops serially), softmax cross-entropy, Adam."""
    rng = np.random.default_rng(seed)
    width = 8 if dense else 640  # (rows this wide run by chunks across threads)
    embed = gc.Variable(rng.standard_normal((11, width)).astype(np.float32), name="embed")
    w1 = gc.Variable(rng.standard_normal((width, 16)).astype(np.float32) * 0.3, name="w1")
    b1 = gc.Variable(np.zeros(16 if dense else width, np.float32), name="b1")
    w2 = gc.Variable(rng.standard_normal((16, 5)).astype(np.float32) * 0.3, name="w2")
    tokens = gc.placeholder((None,), "int64", name="tokens")
    labels = gc.placeholder((None,), "int64", name="labels")
    if dense:
        h = gc.tanh(gc.take(embed, tokens, axis=0) @ w1 + b1)
        logits = h @ w2
    else:
        h = gc.tanh(gc.take(embed, tokens, axis=0) * w1[:, 0] + b1)
        logits = gc.reshape(h, (-1, 5, 128))[:, :, :100].sum(axis=2) * w2[:5, 0] + w2[4, 1]
    loss = gc.mean(gc.softmax_cross_entropy(logits, labels))
    variables = [embed, w1, b1, w2]
    updates = gc.optim.adam(variables, gc.grad(loss, variables), lr=0.05)
    return gc.function([tokens, labels], [loss, h], updates=updates, device="cpu", compile=mode)


def _batches(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    sizes = [6, 6, 9, 6, 4, 9, 6, 6][:n]  # run-time sizes: new shapes mid-run too
    return [(rng.integers(0, 11, s), rng.integers(0, 5, s)) for s in sizes]


@pytest.mark.parametrize("parallel", ["0", "1"])
def test_a_training_run_does_not_depend_on_when_compiling_ends(
    held, monkeypatch: pytest.MonkeyPatch, parallel: str
) -> None:
    """Steps answered from Python, then by the compiled entry, give bit for bit the
    losses, activations and variables of a run compiled eagerly (with serial loops, and
    with loops split across threads)."""
    monkeypatch.setenv("GRAPHC_PARALLEL", parallel)
    monkeypatch.setenv("GRAPHC_PARALLEL_MIN", "16")  # several chunks even for small tests
    background = _mlp_step("background", dense=parallel == "0")
    if parallel == "1":
        assert any(k.parallel for k in background._executable.generated.kernels)
    assert background.compiled == "pending"
    batches = _batches(8)
    got = [background(*b) for b in batches[:4]]
    assert background.compiled == "interpreted"
    assert len(held) == 1  # one background compile, whatever the shapes
    eager = _mlp_step("eager", dense=parallel == "0")
    want = [eager(*b) for b in batches]
    assert eager.compiled == "native"
    held[0].done.set()
    assert background.wait(timeout=60)
    assert background.compiled == "native"
    got += [background(*b) for b in batches[4:]]
    for (loss, h), (want_loss, want_h) in zip(got, want, strict=True):
        np.testing.assert_array_equal(loss, want_loss)
        np.testing.assert_array_equal(h, want_h)
    for name in ("embed", "w1", "b1", "w2"):
        a = next(v for v in background._variables.values() if v.name == name)
        b = next(v for v in eager._variables.values() if v.name == name)
        np.testing.assert_array_equal(a.get_state(), b.get_state())


def test_wait_times_out_while_the_child_compiles(held) -> None:
    fn = _mlp_step("background", seed=1)
    fn(*_batches(1)[0])
    assert fn.compiled == "interpreted"
    assert fn.wait(timeout=0.01) is False
    assert fn.compiled == "interpreted"
    held[0].done.set()
    assert fn.wait() is True


def test_a_child_that_fails_or_hangs_is_replaced_by_a_compile_here(
    held, monkeypatch: pytest.MonkeyPatch
) -> None:
    fn = _mlp_step("background", seed=2)
    batch = _batches(1)[0]
    first = fn(*batch)
    assert fn.compiled == "interpreted"
    monkeypatch.setattr(executable, "BACKGROUND_LIMIT", 0.0)  # it is too late now
    second = fn(*batch)  # (switches before this call)
    assert held[0].killed
    assert fn.compiled == "native"
    twin = _mlp_step("eager", seed=2)  # the same two steps, compiled eagerly
    np.testing.assert_array_equal(twin(*batch)[0], first[0])
    np.testing.assert_array_equal(twin(*batch)[0], second[0])


def test_wait_does_not_wait_for_a_stuck_child_past_the_limit(
    held, monkeypatch: pytest.MonkeyPatch
) -> None:
    fn = _mlp_step("background", seed=3)
    fn(*_batches(1)[0])
    assert fn.compiled == "interpreted"
    monkeypatch.setattr(executable, "BACKGROUND_LIMIT", 0.2)
    assert fn.wait() is True  # (the child never finishes: compiled here instead)
    assert held[0].killed
    assert fn.compiled == "native"


def test_errors_in_the_python_entry_are_the_compiled_entry_errors(held) -> None:
    table = gc.Variable(np.arange(12.0).reshape(4, 3), name="table")
    index = gc.placeholder((None,), "int64", name="index")
    fn = gc.function(
        [index], gc.take(table, index, axis=0) * 2.0, device="cpu", compile="background"
    )
    np.testing.assert_array_equal(fn(np.array([3, 0])), [[18, 20, 22], [0, 2, 4]])
    assert fn.compiled == "interpreted"
    with pytest.raises(gc.IndexOutOfRangeError):
        fn(np.array([4]))
    with pytest.raises(gc.InputError):
        fn(np.zeros((2, 2), np.int64))
    with pytest.raises(IndexError):  # (the builtin a user catches)
        fn(np.array([-5]))


def test_wait_before_any_call_compiles_for_the_calls_to_come() -> None:
    """wait() with no call yet compiles the entry for the types calls will pass: the
    calls after it find it compiled, for feeds, sizes, arena, variables and constants."""
    x = gc.placeholder((None, 3), "float32", name="x")
    n = gc.placeholder((), "int64", name="n")
    v = gc.Variable(np.ones(3, np.float32), name="v")
    out = gc.sum(gc.exp(x * v) @ np.full((3, 2), 0.5, np.float32), axis=0) + gc.cast(n, "float32")
    for mode in ("eager", "background"):
        fn = gc.function([x, n], out, updates={v: v * 0.5}, device="cpu", compile=mode)
        assert fn.compiled == "pending"
        assert fn.wait() is True
        assert fn.compiled == "native"
        feeds = (np.ones((4, 3), np.float32), np.array(2))
        want = gc.function([x, n], out, device="reference")(*feeds)  # (before v changes)
        np.testing.assert_allclose(fn(*feeds), want, rtol=1e-6)
        assert len(fn._executable.entry.signatures) == 1  # nothing compiled again


def test_a_real_background_compile_switches_to_the_compiled_entry() -> None:
    """With a real child process: a graph new to the cache (a size drawn per run)."""
    size = int(np.random.default_rng().integers(1000, 10**6))
    x = gc.placeholder((size,), "float64", name="x")
    fn = gc.function([x], gc.sum(gc.tanh(x) * 2.0), device="cpu", compile="background")
    values = np.linspace(-1, 1, size)
    first = fn(values)
    assert fn.compiled in ("interpreted", "native")
    assert fn.wait(timeout=300)
    assert fn.compiled == "native"
    np.testing.assert_array_equal(fn(values), first)


def test_compile_mode_is_checked_and_kept_by_load(tmp_path) -> None:
    x = gc.placeholder((2,), "float32", name="x")
    with pytest.raises(gc.ArgumentError, match="compile must be one of"):
        gc.function([x], x + 1, compile="lazy")
    fn = gc.function([x], x + 1, device="cpu")
    with pytest.raises(gc.ArgumentError, match="timeout"):
        fn.wait(timeout=-1)
    gc.save(tmp_path / "f.graphc", fn)
    loaded = gc.load(tmp_path / "f.graphc", device="cpu", compile="background")
    assert loaded.compile_mode == "background"
    assert loaded.optimized().compile_mode == "background"
    np.testing.assert_array_equal(loaded(np.ones(2, np.float32)), [2, 2])
    with pytest.raises(gc.ArgumentError):
        gc.load(tmp_path / "f.graphc", compile=1)
    assert gc.function([x], x + 1, device="reference").compiled == "reference"
    assert gc.function([x], x + 1, device="reference").wait() is True


@settings(max_examples=12, deadline=None)
@given(case=strategies.graph_cases())
def test_random_graphs_python_entry_matches_compiled_bit_for_bit(case) -> None:
    """Random programs of the public API: the Python entry's results equal the
    compiled entry's exactly (NaN where it has NaN)."""
    children: list[_HeldChild] = []
    real_fork, real_cached = executable.fork_compile, executable.cached
    real_in_cache = executable.in_cache
    executable.fork_compile = lambda work: children.append(_HeldChild()) or children[-1]
    executable.cached = lambda d, t: (
        bool(children) and children[-1].done.is_set() and real_cached(d, t)
    )
    executable.in_cache = lambda d, t: (
        bool(children) and children[-1].done.is_set() and real_in_cache(d, t)
    )
    try:
        fn, _ = case.compile(symbolic=True, device="cpu", compile="background")
        interpreted = case.results(fn(*case.feeds()))
        assert fn.compiled == "interpreted"
        children[-1].done.set()
        assert fn.wait(timeout=120)
        native = case.results(fn(*case.feeds()))
    finally:
        executable.fork_compile, executable.cached = real_fork, real_cached
        executable.in_cache = real_in_cache
    for a, b in zip(interpreted, native, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def _conv_step(mode: str) -> gc.Function:
    w = gc.Variable(np.full((3, 2, 3, 3), 0.1, np.float32), name="w")
    images = gc.placeholder((None, 2, 8, 8), "float32", name="images")
    h = gc.max_pool2d(gc.relu(gc.conv2d(images, w, padding=1)), 2)
    loss = gc.sum(h * h)
    update = {w: w - 0.001 * gc.grad(loss, [w])[0]}
    return gc.function([images], loss, updates=update, device="cpu", compile=mode)


def test_library_helpers_compile_with_the_kernels(held, monkeypatch) -> None:
    """Before a background function's first call, a dry run of its Python entry finds
    the library helpers it calls (here a convolution's and a pool's) with their
    argument types; they compile with the kernels, so the first call compiles nothing."""
    dispatchers = [v for v in vars(nn).values() if hasattr(v, "overloads")]
    compiled: dict[int, int] = {}  # overloads of each, once kernels and helpers compiled
    real = executable.Executable._start_background

    def start(self, argtypes):  # type: ignore[no-untyped-def]
        real(self, argtypes)
        compiled.update({id(d): len(d.overloads) for d in dispatchers})

    monkeypatch.setattr(executable.Executable, "_start_background", start)
    fn = _conv_step("background")
    feed = np.linspace(-1, 1, 2 * 2 * 64, dtype=np.float32).reshape(2, 2, 8, 8)
    first = fn(feed)
    assert fn.compiled == "interpreted"
    assert {id(d): len(d.overloads) for d in dispatchers} == compiled  # none in the call
    helpers = {c.name for c in fn.report().kernels if c.what == "library helper"}
    assert {"graphc.kernels.cpu.nn.conv2d_c", "graphc.kernels.cpu.nn.max_pool2d_2x2_c"} <= helpers
    second = fn(feed)
    twin = _conv_step("eager")
    np.testing.assert_array_equal(twin(feed), first)
    np.testing.assert_array_equal(twin(feed), second)


def test_the_python_entry_runs_the_threaded_helpers_twins_bit_for_bit(
    held, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the entry splits convolutions and pools across threads (K_par_c), the
    Python entry calls their one-thread twins (K_c, no parallel compile before the first
    result) and a training run gives the eager run's bits, before and after the switch."""
    monkeypatch.setenv("GRAPHC_PARALLEL", "1")
    background, eager = _conv_step("background"), _conv_step("eager")
    assert "nnk.conv2d_par_c(" in background.source
    assert "nnk.max_pool2d_2x2_par_c(" in background.source
    rng = np.random.default_rng(5)
    feeds = [rng.standard_normal((n, 2, 8, 8)).astype(np.float32) for n in (7, 20, 1, 7)]
    got = [background(f) for f in feeds[:2]]
    assert background.compiled == "interpreted"
    helpers = {c.name for c in background.report().kernels if c.what == "library helper"}
    assert "graphc.kernels.cpu.nn.conv2d_c" in helpers
    assert not any(name.endswith("_par_c") for name in helpers)
    held[0].done.set()
    assert background.wait(timeout=120)
    assert background.compiled == "native"
    got += [background(f) for f in feeds[2:]]
    want = [eager(f) for f in feeds]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        next(iter(background._variables.values())).get_state(),
        next(iter(eager._variables.values())).get_state(),
    )


def test_the_python_entry_multiplies_with_the_compiled_entrys_blas(
    held, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 2-D float product (here with a transposed operand) runs the same numba BLAS
    helper from both entries: numpy's own BLAS may round differently, and its threads
    spin against the other library's."""

    def step(mode: str) -> gc.Function:
        start = np.random.default_rng(7).standard_normal((24, 16)).astype(np.float32)
        w = gc.Variable(start, name="w")
        x = gc.placeholder((None, 24), "float32", name="x")
        h = gc.tanh(x @ w)
        loss = gc.sum(h @ gc.transpose(w))
        updates = {w: w - 0.01 * gc.grad(loss, [w])[0]}
        return gc.function([x], loss, updates=updates, device="cpu", compile=mode)

    background, eager = step("background"), step("eager")
    rng = np.random.default_rng(8)
    feeds = [rng.standard_normal((n, 24)).astype(np.float32) for n in (5, 33, 5)]

    def no_numpy_blas(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the Python entry called numpy's BLAS")

    got = [background(feeds[0])]  # (compiles the kernels and helpers, which name np.dot)
    with monkeypatch.context() as patched:
        patched.setattr(np, "dot", no_numpy_blas)
        got += [background(f) for f in feeds[1:]]
    assert background.compiled == "interpreted"
    want = [eager(f) for f in feeds]
    for g, e in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, e)


def test_auto_compiles_a_small_entry_eagerly_and_a_large_one_in_the_background(
    held, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compile="auto" (the default) picks by the size of the entry's code: a small
    entry compiles at the first call; one past AUTO_BACKGROUND answers from Python
    while it compiles, bit-identical to the eager function."""
    x = gc.placeholder((None, 3), "float32", name="x")
    small = gc.function([x], gc.tanh(x) * 2.0, device="cpu")
    assert small.compile_mode == "auto"
    assert small._executable.generated.size < executable.AUTO_BACKGROUND
    small(np.ones((2, 3), np.float32))
    assert small.compiled == "native"
    assert not held  # (no background compile)
    # the classifier step's entry is larger than this limit
    monkeypatch.setattr(executable, "AUTO_BACKGROUND", 500)
    large = _mlp_step("auto", seed=4)
    assert large._executable.generated.size > 500
    eager = _mlp_step("eager", seed=4)
    batches = _batches(3)
    got = [large(*b) for b in batches[:2]]
    assert large.compiled == "interpreted"
    assert len(held) == 1
    held[0].done.set()
    assert large.wait(timeout=60)
    got.append(large(*batches[2]))
    for (loss, h), batch in zip(got, batches, strict=True):
        want_loss, want_h = eager(*batch)
        np.testing.assert_array_equal(loss, want_loss)
        np.testing.assert_array_equal(h, want_h)


def test_entry_size_counts_code_not_comments() -> None:
    x = gc.placeholder((None, 3), "float32", name="x")
    generated = gc.function([x], gc.tanh(x) * 2.0, device="cpu")._executable.generated
    body = generated.source.split("def entry(", 1)[1].split("\ndef ", 1)[0]
    code = [line.strip() for line in body.splitlines()[1:] if line.strip()]
    assert generated.size == sum(len(line) for line in code if not line.startswith("#"))
    assert 0 < generated.size < len(body)
