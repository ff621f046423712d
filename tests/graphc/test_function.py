"""graphc.function: signature checks, output structures, variables and updates, fresh
outputs, weak scalars, and calls from several threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import graphc as gc


def test_output_structures_are_preserved() -> None:
    x = gc.placeholder((3,), name="x")
    y = x * 2
    assert isinstance(gc.function([x], y)(np.ones(3)), np.ndarray)
    as_tuple = gc.function([x], (y, x))(np.ones(3))
    assert isinstance(as_tuple, tuple)
    assert len(as_tuple) == 2
    as_list = gc.function([x], [y])(np.ones(3))
    assert isinstance(as_list, list)
    assert len(as_list) == 1
    as_dict = gc.function([x], {"double": y, "same": x})(np.ones(3))
    assert set(as_dict) == {"double", "same"}
    np.testing.assert_array_equal(as_dict["double"], [2, 2, 2])


def test_signature_is_exposed() -> None:
    x = gc.placeholder((None, 4), name="x")
    f = gc.function([x], {"total": gc.sum(x, axis=1)})
    assert [(s.name, s.dtype, s.shape) for s in f.inputs] == [("x", np.float32, (None, 4))]
    assert [(s.name, s.shape) for s in f.outputs] == [("total", (None,))]
    assert "graphc.Function" in repr(f)


def test_scalar_results_are_0d_arrays() -> None:
    x = gc.placeholder((None,))
    result = gc.function([x], gc.mean(x))(np.arange(4.0))
    assert isinstance(result, np.ndarray)
    assert result.shape == ()
    assert result == 1.5


def test_placeholders_constants_and_variables_may_be_outputs() -> None:
    x = gc.placeholder((2,))
    v = gc.Variable(np.array([1.0, 2.0], "float32"))
    c = gc.constant([7, 8])
    feed = np.array([3.0, 4.0], "float32")
    out_x, out_v, out_c = gc.function([x], [x, v, c])(feed)
    np.testing.assert_array_equal(out_x, feed)
    assert out_x is not feed
    assert not np.shares_memory(out_x, feed)
    np.testing.assert_array_equal(out_v, [1, 2])
    np.testing.assert_array_equal(out_c, [7, 8])


def test_each_call_returns_fresh_arrays() -> None:
    x = gc.placeholder((3,))
    f = gc.function([x], [x + 1, x + 1])
    first, second = f(np.zeros(3))
    assert not np.shares_memory(first, second)
    first[:] = 100
    again, _ = f(np.zeros(3))
    np.testing.assert_array_equal(again, [1, 1, 1])


def test_inputs_may_be_empty_and_unused_inputs_are_validated() -> None:
    assert gc.function([], gc.constant(3) * 2)() == 6
    x = gc.placeholder((2,), name="unused")
    f = gc.function([x], gc.constant(1.0))
    assert f(np.zeros(2)) == 1.0
    with pytest.raises(gc.InputError):
        f(np.zeros(3))
    with pytest.raises(gc.InputError):
        f()


def test_signature_errors() -> None:
    a = gc.placeholder((2,), name="same")
    b = gc.placeholder((2,), name="same")
    with pytest.raises(gc.InputError, match="unique"):
        gc.function([a, b], a + b)
    c = gc.placeholder((2,), name="c")
    with pytest.raises(gc.InputError, match=r"placeholder\(s\) \['c'\]"):
        gc.function([a], a + c)
    v = gc.Variable(np.zeros(2))
    with pytest.raises(gc.InputError, match="Variable"):
        gc.function([v], v)
    with pytest.raises(gc.InputError, match="not a placeholder"):
        gc.function([a + 1], a)
    with pytest.raises(gc.ArgumentError):
        gc.function([a], a, device="tpu")
    with pytest.raises(gc.ArgumentError, match="unknown pass"):
        gc.function([a], a, optimize=["fold", "magic"])
    assert gc.function([a], a, optimize=["fold", "dce"]).pipeline == ("fold", "dce")
    assert gc.function([a], a, optimize=False).pipeline == ()


def test_updates_use_old_values_and_apply_together_after_outputs() -> None:
    a = gc.Variable(np.array(1.0), name="a")
    b = gc.Variable(np.array(10.0), name="b")
    # a swap: each new value reads the other's *old* value
    step = gc.function([], a + b, updates={a: b, b: a})
    assert step() == 11.0
    assert a.value == 10.0
    assert b.value == 1.0
    assert step() == 11.0
    assert a.value == 1.0
    assert b.value == 10.0


def test_variables_are_shared_between_functions() -> None:
    w = gc.Variable(np.zeros(3, "float32"), name="w")
    x = gc.placeholder((3,), name="x")
    train = gc.function([x], gc.sum(w), updates={w: w + x})
    read = gc.function([], w * 1)
    train(np.ones(3))
    train(np.ones(3))
    np.testing.assert_array_equal(read(), [2, 2, 2])
    assert w.value.dtype == np.float32


def test_variable_value_and_assign() -> None:
    v = gc.Variable([1.0, 2.0], name="v")
    assert v.dtype == np.float64
    assert v.shape == (2,)
    copy = v.value
    copy[0] = 100
    np.testing.assert_array_equal(v.value, [1.0, 2.0])
    v.assign(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(gc.function([], v + 0)(), [3.0, 4.0])
    v.assign([5, 6])  # a list takes the variable's dtype
    np.testing.assert_array_equal(v.value, [5.0, 6.0])
    with pytest.raises(gc.DTypeError):
        v.assign(np.array([1.0, 2.0], "float32"))
    with pytest.raises(gc.ShapeError):
        v.assign(np.zeros(3))
    source = np.zeros(2)
    w = gc.Variable(source)
    source[0] = 9
    assert w.value[0] == 0  # the initial value is copied
    assert not gc.Variable(np.zeros(1), trainable=False).trainable


def test_update_type_checks() -> None:
    v = gc.Variable(np.zeros(3, "float32"), name="v")
    with pytest.raises(gc.DTypeError, match="astype"):
        gc.function([], v, updates={v: v * np.float64(2)})
    with pytest.raises(gc.ShapeError):
        gc.function([], v, updates={v: gc.constant(np.zeros(4, "float32"))})
    with pytest.raises(gc.GraphcError):
        gc.function([], v, updates={gc.constant(1.0): v})
    x = gc.placeholder((None,), name="x")
    f = gc.function([x], v, updates={v: x})
    f(np.ones(3, "float32"))
    np.testing.assert_array_equal(v.value, [1, 1, 1])
    with pytest.raises(gc.InputError, match="update of variable 'v'"):
        f(np.ones(4, "float32"))
    np.testing.assert_array_equal(v.value, [1, 1, 1])


def test_update_values_are_copied_from_feeds() -> None:
    v = gc.Variable(np.zeros(2))
    x = gc.placeholder((2,), "float64")
    f = gc.function([x], [], updates={v: x})
    feed = np.ones(2)
    f(feed)
    feed[0] = 5
    np.testing.assert_array_equal(v.value, [1, 1])


@pytest.mark.parametrize(
    ("dtype", "scalar", "expected"),
    [
        ("float32", 0.5, "float32"),
        ("float32", 2, "float32"),
        ("int32", 2, "int32"),
        ("int32", 2.5, "float64"),
        ("bool", 1, "int64"),
        ("int64", True, "int64"),
        ("float64", np.float32(2), "float64"),
    ],
)
def test_python_scalars_are_weak(dtype: str, scalar: object, expected: str) -> None:
    x = gc.placeholder((2,), dtype)
    assert (x * scalar).dtype == np.dtype(expected)
    assert (scalar * x).dtype == np.dtype(expected)
    with np.errstate(all="ignore"):
        numpy_result = np.ones(2, dtype) * scalar
    assert numpy_result.dtype == np.dtype(expected)


def test_numpy_arrays_on_the_left_defer_to_tensors() -> None:
    x = gc.placeholder((3,), "float32")
    result = np.ones(3, "float64") + x
    assert isinstance(result, gc.Tensor)
    assert result.dtype == np.float64
    assert isinstance(np.float32(2) * x, gc.Tensor)


def test_tensor_attributes_and_methods() -> None:
    x = gc.placeholder((None, 3), "float32", name="x")
    assert x.shape == (None, 3)
    assert x.ndim == 2
    assert x.dtype == np.float32
    assert x.name == "x"
    assert x.T.shape == (3, None)
    assert x.reshape(-1).shape == (None,)
    assert x.reshape((3, -1)).shape == (3, None)
    assert x.transpose(1, 0).shape == (3, None)
    assert x.astype("int64").dtype == np.int64
    assert x.sum(axis=0).shape == (3,)
    assert x.max(axis=1, keepdims=True).shape == (None, 1)
    assert abs(x).shape == (None, 3)
    assert x.abs().shape == (None, 3)
    assert (x == x) is True
    assert (x != x) is False
    assert len({x, x}) == 1
    y = gc.placeholder((2, 3))
    assert len(y) == 2
    assert [t.shape for t in y] == [(3,), (3,)]
    with pytest.raises(gc.GraphcError):
        len(x)
    assert "x" in repr(x)
    assert "float32" in repr(x)


def test_threads_call_one_function_concurrently() -> None:
    x = gc.placeholder((None,))
    f = gc.function([x], gc.sum(gc.tanh(x) * 2))
    inputs = [np.random.default_rng(i).standard_normal(1000).astype("float32") for i in range(8)]
    expected = [f(a) for a in inputs]
    results: dict[int, list[np.ndarray]] = {}

    def work(index: int) -> None:
        results[index] = [f(inputs[index]) for _ in range(20)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        assert all(r == expected[i] for r in results[i])
