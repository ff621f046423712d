"""Errors by Python type: every error the public API raises is a GraphcError that is also
the builtin a Python user would catch (TypeError for a wrong kind of argument,
ValueError for a bad value, IndexError for an index, FormatError for a path that is not
a readable graphc file), and the bare base class is never raised."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graphc as gc
import graphc.errors
from graphc.api import __all__ as OP_FUNCTIONS

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ("graphc", "passes", "kernels", "runtime")
BUILTINS = (TypeError, ValueError, IndexError, OSError, RuntimeError)


def test_every_error_class_is_also_a_builtin() -> None:
    classes = [
        value
        for value in vars(graphc.errors).values()
        if isinstance(value, type) and issubclass(value, gc.GraphcError)
    ]
    assert len(classes) >= 14
    for cls in classes:
        if cls is not gc.GraphcError:
            assert issubclass(cls, BUILTINS), cls
            assert getattr(gc, cls.__name__) is cls  # exported


def _bare_base_uses(path: Path) -> list[int]:
    """Lines that raise GraphcError itself, or pass it as the class of an error to make."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id == "GraphcError":
                lines.append(node.lineno)
        if isinstance(node, ast.Call):
            callee = node.func.id if isinstance(node.func, ast.Name) else None
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if isinstance(arg, ast.Name) and arg.id == "GraphcError" and callee != "isinstance":
                    lines.append(node.lineno)
            if callee == "GraphcError":
                lines.append(node.lineno)
    return lines


def test_the_package_never_raises_the_bare_base_class() -> None:
    offenders = []
    for folder in PACKAGE_DIRS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            offenders += [f"{path.relative_to(REPO_ROOT)}:{line}" for line in _bare_base_uses(path)]
    assert not offenders, offenders


def test_the_scan_finds_a_bare_raise(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n"
        "    raise GraphcError('x')\n"
        "def g():\n"
        "    raise located('op', GraphcError, 'x')\n"
        "def h(error):\n"
        "    return isinstance(error, GraphcError)\n"
    )
    assert sorted(set(_bare_base_uses(sample))) == [2, 4]


BAD_VALUES = [
    "abc",
    None,
    object(),
    {},
    [],
    [[1], [1, 2]],
    1.5,
    -7,
    10**30,
    (1, "a"),
    np.zeros(3, "complex64"),
    np.array(["a"]),
    True,
]


def _assert_graphc_error(label: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """`call(*args, **kwargs)` succeeds, or raises a GraphcError that is also a builtin."""
    try:
        call(*args, **kwargs)
    except Exception as error:
        if not isinstance(error, gc.GraphcError) or not isinstance(error, BUILTINS):
            pytest.fail(f"{label}: raised {type(error).__name__}: {error}")


@pytest.mark.parametrize("name", sorted(OP_FUNCTIONS))
def test_op_functions_with_bad_arguments_raise_graphc_errors(name: str) -> None:
    """Each argument of each op function in turn replaced by values of the wrong kind or
    out of range; every other argument a valid float or int tensor."""
    function = getattr(gc, name)
    floats = gc.placeholder((2, 3), "float32", name="floats")
    ints = gc.placeholder((2,), "int64", name="ints")
    parameters = list(inspect.signature(function).parameters.values())
    positional = [p for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    required = sum(1 for p in positional if p.default is p.empty)
    for k, parameter in enumerate(positional):
        for bad in [*BAD_VALUES, floats, ints]:
            for base in (floats, ints):
                args = [base] * max(required, k + 1)
                args[k] = bad
                _assert_graphc_error(f"{name}({parameter.name}={bad!r:.40})", function, *args)
    for parameter in parameters:
        if parameter.default is not parameter.empty:
            for bad in BAD_VALUES:
                label = f"{name}({parameter.name}={bad!r:.40})"
                _assert_graphc_error(label, function, *[floats] * required, **{parameter.name: bad})


def test_the_rest_of_the_api_with_bad_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a bad path that is a valid name is written here
    x = gc.placeholder((2, 3), "float32", name="x")
    w = gc.Variable(np.zeros((2, 3), "float32"), name="w")
    fn = gc.function([x], x * 2.0, device="reference")
    gc.save(tmp_path / "fn.graphc", fn)
    calls: dict[str, Callable[[Any], Any]] = {
        "placeholder(shape)": lambda bad: gc.placeholder(bad),
        "placeholder(dtype)": lambda bad: gc.placeholder((2,), bad),
        "placeholder(name)": lambda bad: gc.placeholder((2,), "float32", bad),
        "Variable": lambda bad: gc.Variable(bad),
        "Variable(name)": lambda bad: gc.Variable(1.0, name=bad),
        "Variable.assign": lambda bad: w.assign(bad),
        "constant": lambda bad: gc.constant(bad),
        "constant(dtype)": lambda bad: gc.constant(1, bad),
        "function(inputs)": lambda bad: gc.function(bad, x),
        "function(outputs)": lambda bad: gc.function([x], bad),
        "function(updates)": lambda bad: gc.function([x], x, updates=bad),
        "function(updates value)": lambda bad: gc.function([x], x, updates={w: bad}),
        "function(update target)": lambda bad: gc.function([x], x, updates=_mapping(bad, x)),
        "function(device)": lambda bad: gc.function([x], x, device=bad),
        "function(optimize)": lambda bad: gc.function([x], x, optimize=bad),
        "grad(y)": lambda bad: gc.grad(bad, [x]),
        "grad(xs)": lambda bad: gc.grad(gc.sum(x), bad),
        "grad(xs[0])": lambda bad: gc.grad(gc.sum(x), [bad]),
        "save(path)": lambda bad: gc.save(bad, fn),
        "save(function)": lambda bad: gc.save(tmp_path / "other.graphc", bad),
        "load(path)": lambda bad: gc.load(bad),
        "load(device)": lambda bad: gc.load(tmp_path / "fn.graphc", device=bad),
        "Tensor.reshape": lambda bad: x.reshape(bad),
        "Tensor[]": lambda bad: x[bad],
        "Tensor.astype": lambda bad: x.astype(bad),
        "Tensor.transpose": lambda bad: x.transpose(bad),
        "Tensor.sum": lambda bad: x.sum(axis=bad),
        "optim.sgd(params)": lambda bad: gc.optim.sgd(bad, [x], 0.1),
        "optim.sgd(lr)": lambda bad: gc.optim.sgd([w], [x], bad),
        "optim.adam(params)": lambda bad: gc.optim.adam(bad, [x]),
        "optim.adam(betas)": lambda bad: gc.optim.adam([w], [x], betas=bad),
        "optim.clip(grads)": lambda bad: gc.optim.clip_by_global_norm(bad, 1.0),
        "optim.clip(max_norm)": lambda bad: gc.optim.clip_by_global_norm([x], bad),
        "call": lambda bad: fn(bad),
        "call by name": lambda bad: fn(x=bad),
    }
    for label, call in calls.items():
        for bad in [*BAD_VALUES, x]:
            _assert_graphc_error(f"{label} with {bad!r:.40}", call, bad)


def _mapping(key: Any, value: Any) -> Any:
    """{key: value}, or, for an unhashable key, a mapping with that key all the same."""

    class Pairs(Mapping):
        def __getitem__(self, wanted: Any) -> Any:
            return value

        def __iter__(self) -> Iterator[Any]:
            return iter([key])

        def __len__(self) -> int:
            return 1

    return Pairs()


def test_load_of_a_directory_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(gc.FormatError, match="not a readable graphc file") as info:
        gc.load(tmp_path)
    assert isinstance(info.value, ValueError)


def test_load_of_a_missing_path_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        gc.load(tmp_path / "missing.graphc")


def test_save_into_a_missing_folder_is_a_file_error(tmp_path: Path) -> None:
    fn = gc.function([], gc.constant(1.0), device="reference")
    with pytest.raises(gc.FileError) as info:
        gc.save(tmp_path / "no" / "such" / "folder.graphc", fn)
    assert isinstance(info.value, OSError)
    assert info.value.errno is not None


def test_a_path_with_a_nul_character_is_an_argument_error(tmp_path: Path) -> None:
    fn = gc.function([], gc.constant(1.0), device="reference")
    with pytest.raises(gc.ArgumentError, match="NUL"):
        gc.save(str(tmp_path / "a\0b.graphc"), fn)
    with pytest.raises(ValueError, match="NUL"):
        gc.load(str(tmp_path / "a\0b.graphc"))


def test_updating_a_placeholder_is_a_type_error() -> None:
    x = gc.placeholder((3,), "float32", name="x")
    with pytest.raises(TypeError, match="is not a Variable") as info:
        gc.function([x], x, updates={x: x + 1.0})
    assert isinstance(info.value, gc.GraphcError)


def test_function_inputs_that_are_not_placeholders_are_type_errors() -> None:
    x = gc.placeholder((3,), "float32", name="x")
    w = gc.Variable(np.zeros(3, "float32"), name="w")
    for bad in (w, x + 1.0, [x][0] * 2.0):
        with pytest.raises(gc.InputError) as info:
            gc.function([bad], x)
        assert isinstance(info.value, TypeError)


def test_symbolic_truth_and_length_are_type_errors() -> None:
    x = gc.placeholder((None,), "float32", name="x")
    with pytest.raises(TypeError, match="truth value"):
        bool(x > 0)
    with pytest.raises(TypeError, match="known first dimension"):
        len(x)


def test_run_on_device_off_the_gpu_is_a_device_error() -> None:
    fn = gc.function([], gc.constant(1.0), device="reference")
    with pytest.raises(gc.DeviceError) as info:
        fn.run_on_device()
    assert isinstance(info.value, RuntimeError)
