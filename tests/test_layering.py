"""Layering: data flows one way, so no module may import a layer below it.

Walks every source file of graphc/, passes/, kernels/ and runtime/ with the stdlib ``ast``
(nothing is imported) and fails on an upward import, following ARCHITECTURE.md:

- the IR core (every module of graphc/ except the orchestration modules) imports nothing
  from graphc.passes, graphc.kernels, graphc.runtime or the orchestration modules;
- passes/ imports only the IR core;
- kernels/ imports the IR core, never graphc.passes or graphc.runtime;
- runtime/ imports the IR core and graphc.kernels, never graphc.passes;
- the orchestration modules (function, format, cli) sit on top and may import anything;
- only kernels/cuda/ and runtime/cuda.py import numba.cuda;
- inside the IR core, the registry and the op modules (graphc/ops/) sit below the front
  end: they import nothing of graphc.api, graphc.tensor, graphc.autodiff or
  graphc.function. The front end imports the registry to build nodes, and gradient rules
  are handed the API they build with (OpDef.vjp), so nothing there needs it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Source folder in the repository -> the package it is installed as (see pyproject.toml).
SOURCE_ROOTS = {
    "graphc": "graphc",
    "passes": "graphc.passes",
    "kernels": "graphc.kernels",
    "runtime": "graphc.runtime",
}

# On top of every layer: they wire passes, kernels and runtime together.
# graphc.__main__ (``python -m graphc``) is only a doorway to the cli.
ORCHESTRATION = ("graphc.function", "graphc.format", "graphc.cli", "graphc.__main__")
LOWER_LAYERS = ("graphc.passes", "graphc.kernels", "graphc.runtime")

# The public facade graphc/__init__.py re-exports function(), save() and load() from the
# orchestration modules, but must not pull in the lower layers itself.
FORBIDDEN_FOR_FACADE = LOWER_LAYERS
FORBIDDEN_FOR_CORE = LOWER_LAYERS + ORCHESTRATION

# The front end: the symbolic Tensor and op functions, and the graph transformation and
# compile step built on them. The registry and the op definitions sit below it.
FRONT_END = ("graphc.api", "graphc.tensor", "graphc.autodiff", "graphc.function")
BELOW_FRONT_END = ("graphc.registry", "graphc.ops")
FORBIDDEN_FOR_OPS = FORBIDDEN_FOR_CORE + FRONT_END
FORBIDDEN_FOR_PASSES = ("graphc.kernels", "graphc.runtime", *ORCHESTRATION)
FORBIDDEN_FOR_KERNELS = ("graphc.passes", "graphc.runtime", *ORCHESTRATION)
FORBIDDEN_FOR_RUNTIME = ("graphc.passes", *ORCHESTRATION)

CUDA_MODULE = "numba.cuda"
CUDA_ALLOWED = ("graphc.kernels.cuda", "graphc.runtime.cuda")


@dataclass(frozen=True)
class ImportRef:
    """One module a source file imports (or may import), with the line that does it."""

    target: str
    line: int


def is_within(module: str, prefix: str) -> bool:
    """Whether ``module`` is ``prefix`` or one of its submodules."""
    return module == prefix or module.startswith(prefix + ".")


def module_name_for(path: Path) -> tuple[str, bool]:
    """The installed module name of a source file, and whether it is a package."""
    relative = path.resolve().relative_to(REPO_ROOT)
    package = SOURCE_ROOTS[relative.parts[0]]
    parts = [*relative.parts[1:-1], relative.stem]
    is_package = relative.name == "__init__.py"
    if is_package:
        parts = parts[:-1]
    return ".".join([package, *parts]), is_package


def resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module that ``from <level dots><name> import ...`` names."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 >= len(package):
        raise ValueError(f"{module}: relative import beyond the top-level package")
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, name]) if name else ".".join(base)


def imports_of_from(node: ast.ImportFrom, module: str, is_package: bool) -> list[ImportRef]:
    """``from a import b`` may import module ``a`` or submodule ``a.b``: report both."""
    if node.level:
        base = resolve_relative(module, is_package, node.level, node.module)
    else:
        base = node.module or ""
    refs = [ImportRef(base, node.lineno)]
    refs += [ImportRef(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return refs


def dynamic_import_target(node: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("x")`` or ``__import__("x")``."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def find_imports(source: str, module: str, is_package: bool) -> list[ImportRef]:
    """Every module the source imports, at any depth (inside functions too)."""
    refs: list[ImportRef] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            refs += [ImportRef(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            refs += imports_of_from(node, module, is_package)
        elif isinstance(node, ast.Call):
            target = dynamic_import_target(node)
            if target and not target.startswith("."):
                refs.append(ImportRef(target, node.lineno))
    return refs


def forbidden_for(module: str) -> tuple[str, ...]:
    """The modules that ``module`` must not import, by the layer it belongs to."""
    if any(is_within(module, top) for top in ORCHESTRATION):
        return ()
    if module == "graphc":
        return FORBIDDEN_FOR_FACADE
    if is_within(module, "graphc.passes"):
        return FORBIDDEN_FOR_PASSES
    if is_within(module, "graphc.kernels"):
        return FORBIDDEN_FOR_KERNELS
    if is_within(module, "graphc.runtime"):
        return FORBIDDEN_FOR_RUNTIME
    if any(is_within(module, below) for below in BELOW_FRONT_END):
        return FORBIDDEN_FOR_OPS
    return FORBIDDEN_FOR_CORE


def violations_in(source: str, module: str, is_package: bool) -> list[str]:
    """One message per upward import (or stray numba.cuda import) in the source."""
    forbidden = forbidden_for(module)
    may_use_cuda = any(is_within(module, allowed) for allowed in CUDA_ALLOWED)
    messages = []
    for ref in find_imports(source, module, is_package):
        if any(is_within(ref.target, lower) for lower in forbidden):
            messages.append(f"{module}:{ref.line} imports {ref.target} (upward import)")
        elif is_within(ref.target, CUDA_MODULE) and not may_use_cuda:
            messages.append(
                f"{module}:{ref.line} imports {ref.target} "
                f"(only {' and '.join(CUDA_ALLOWED)} may import numba.cuda)"
            )
    return sorted(set(messages))


def source_files() -> list[Path]:
    """Every Python source file that ends up inside the installed graphc package."""
    files = []
    for folder in SOURCE_ROOTS:
        files += [
            path
            for path in sorted((REPO_ROOT / folder).rglob("*.py"))
            if "__pycache__" not in path.parts
        ]
    return files


def test_no_upward_imports():
    files = source_files()
    # guards against passing vacuously (wrong root, files moved away)
    assert len(files) > 10, f"expected more than 10 source files, found {files}"
    messages = []
    for path in files:
        module, is_package = module_name_for(path)
        messages += violations_in(path.read_text(encoding="utf-8"), module, is_package)
    assert not messages, "upward imports:\n" + "\n".join(messages)


@pytest.mark.parametrize(
    ("relative_path", "expected"),
    [
        ("graphc/__init__.py", ("graphc", True)),
        ("graphc/ir.py", ("graphc.ir", False)),
        ("graphc/ops/__init__.py", ("graphc.ops", True)),
        ("passes/fold.py", ("graphc.passes.fold", False)),
        ("kernels/cpu/__init__.py", ("graphc.kernels.cpu", True)),
        ("kernels/cuda/emit.py", ("graphc.kernels.cuda.emit", False)),
        ("runtime/cuda.py", ("graphc.runtime.cuda", False)),
    ],
)
def test_module_name_for(relative_path, expected):
    assert module_name_for(REPO_ROOT / relative_path) == expected


SYNTHETIC_PASS = """
import numpy as np
import graphc.kernels
from graphc.ir import Graph
from graphc import function
from .. import ir, runtime
from ..kernels.plan import plan
from . import manager
from numba import cuda

def late():
    from graphc.format import save
    import importlib
    importlib.import_module("graphc.runtime.cache")
"""


def test_checker_finds_every_upward_import_in_a_synthetic_pass():
    messages = violations_in(SYNTHETIC_PASS, "graphc.passes.fake", is_package=False)
    flagged = {message.split(" imports ")[1].split(" ")[0] for message in messages}
    assert flagged == {
        "graphc.kernels",
        "graphc.function",
        "graphc.runtime",
        "graphc.kernels.plan",
        "graphc.kernels.plan.plan",
        "numba.cuda",
        "graphc.format",
        "graphc.format.save",
        "graphc.runtime.cache",
    }


SYNTHETIC_OP_MODULE = """
from graphc import dtypes
from graphc.registry import OpDef, register
from graphc.types import TensorType
from ..tensor import build1
from .. import api

def _grad(api, g, y, x):
    import graphc.autodiff
    from graphc.api.elementwise import where
    from graphc import function
    import importlib
    importlib.import_module("graphc.tensor")
    return [g]
"""


def test_checker_finds_every_front_end_import_in_a_synthetic_op_module():
    messages = violations_in(SYNTHETIC_OP_MODULE, "graphc.ops.fake", is_package=False)
    flagged = {message.split(" imports ")[1].split(" ")[0] for message in messages}
    assert flagged == {
        "graphc.tensor",
        "graphc.tensor.build1",
        "graphc.api",
        "graphc.autodiff",
        "graphc.api.elementwise",
        "graphc.api.elementwise.where",
        "graphc.function",
    }


def test_op_modules_import_without_the_front_end():
    """Registering every op loads none of the front end (the import-time twin of the ast
    walk above, which would miss an import hidden from it).

    `import graphc.ops` runs graphc/__init__.py first, and that imports the whole front
    end, so the child process puts a bare `graphc` package in its place: then the
    registry and the op modules load exactly what they import themselves."""
    script = textwrap.dedent(
        """
        import sys, types
        package = types.ModuleType("graphc")
        package.__path__ = [sys.argv[1]]
        sys.modules["graphc"] = package
        import graphc.ops
        from graphc.registry import REGISTRY
        loaded = sorted(m for m in sys.modules if m.startswith("graphc."))
        print(len(REGISTRY), " ".join(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(REPO_ROOT / "graphc")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    registered, loaded = result.stdout.split(maxsplit=1)
    assert int(registered) > 50, result.stdout  # every family registered its ops
    modules = loaded.split()
    assert "graphc.ops.elementwise" in modules
    front_end = [m for m in modules if any(is_within(m, f) for f in FRONT_END)]
    assert not front_end, f"importing graphc.ops loaded {front_end}"


@pytest.mark.parametrize(
    ("source", "module", "is_package", "is_violation"),
    [
        # the IR core
        ("from .function import function", "graphc.ir", False, True),
        ("from . import passes", "graphc.ir", False, True),
        ("from ..kernels import plan", "graphc.ops.linalg", False, True),
        ("from .. import registry", "graphc.ops.linalg", False, False),
        ("from .elementwise import unary", "graphc.ops", True, False),
        ("import graphc.cli", "graphc.autodiff", False, True),
        # the registry and the op modules sit below the front end
        ("from graphc.tensor import build1", "graphc.ops.index", False, True),
        ("from graphc import api", "graphc.ops.linalg", False, True),
        ("from ..autodiff import fit_to", "graphc.ops.shape", False, True),
        ("import graphc.api", "graphc.registry", False, True),
        ("from . import elementwise", "graphc.ops", True, False),
        ("from graphc.types import TensorType", "graphc.registry", False, False),
        # the front end itself builds on the registry and on itself
        ("from graphc.tensor import build1", "graphc.api.shape", False, False),
        ("from graphc.registry import lookup", "graphc.tensor", False, False),
        ("import graphc.api", "graphc.tensor", False, False),
        ("from graphc.api.elementwise import add", "graphc.autodiff", False, False),
        # the public facade re-exports the orchestration modules, not the layers below
        ("from .function import function", "graphc", True, False),
        ("from .passes import run_pipeline", "graphc", True, True),
        # the orchestration modules may import anything
        ("from graphc import passes, kernels, runtime", "graphc.function", False, False),
        ("from .runtime.cache import CompileCache", "graphc.format", False, False),
        # kernels and runtime
        ("from graphc.runtime import Executable", "graphc.kernels.plan", False, True),
        ("from ...passes import manager", "graphc.kernels.cpu.emit", False, True),
        ("from .. import plan", "graphc.kernels.cpu.emit", False, False),
        ("from graphc.kernels import plan", "graphc.runtime.executable", False, False),
        ("from graphc.passes import run_pipeline", "graphc.runtime.executable", False, True),
        # numba.cuda stays in the CUDA backend and the runtime's device module
        ("from numba import cuda", "graphc.kernels.cuda.emit", False, False),
        ("import numba.cuda as cuda", "graphc.runtime.cuda", False, False),
        ("import numba.cuda as cuda", "graphc.runtime.executable", False, True),
        ("from numba.cuda import jit", "graphc.kernels.cpu.emit", False, True),
        ("from numba import njit, prange", "graphc.kernels.cpu.emit", False, False),
    ],
)
def test_checker_on_single_imports(source, module, is_package, is_violation):
    assert bool(violations_in(source, module, is_package)) == is_violation


def test_relative_import_beyond_the_top_level_package_is_an_error():
    with pytest.raises(ValueError, match="beyond the top-level package"):
        violations_in("from ... import ir", "graphc.ir", is_package=False)
