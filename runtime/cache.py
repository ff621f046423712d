"""The on-disk compile cache: generated modules as real files, loaded by numba with
`cache=True` so a process that meets a graph compiled before skips compilation.

Part of graphc.runtime. A module's file name is a hash of its source, the numba
version, the CPU (name and features) and graphc's kernel library, so code compiled
for one machine, numba or graphc version is never loaded by another. Files are
written to a temporary name and then linked into place, which either creates the
file whole or leaves the existing one alone: concurrent processes never read half a
file, and a file numba has already cached against keeps its timestamp. A file whose
text is not the source it is named for (damaged, or written by someone else) is
replaced before anything imports it. numba keeps its compiled code next to each
module, in `__pycache__`.

A module loaded once stays loaded (numba never frees machine code), so graphs that
generate the same code share it: `load_generated` names a module by its text without
comments, and the same graph built twice, or a file loaded twice, loads nothing new.

The directory is `$GRAPHC_CACHE_DIR`, else `$XDG_CACHE_HOME/graphc`, else
`~/.cache/graphc`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType

import numba

from graphc.kernels import text

_LOADED: dict[str, ModuleType] = {}
_LOCK = threading.Lock()


def directory() -> Path:
    """The cache directory (created on first use)."""
    configured = os.environ.get("GRAPHC_CACHE_DIR")
    if configured:
        path = Path(configured)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "graphc"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def _library_digest() -> str:
    """A digest of the numba code generated modules call into (kernels/cpu/*.py,
    kernels/cuda/*.py and kernels/numpy_rules.py): numba caches a generated module's
    code with those callees compiled in, and checks only the module's own file for
    changes."""
    import graphc.kernels

    digest = hashlib.sha256()
    root = Path(graphc.kernels.__file__).parent
    libraries = sorted([*root.glob("cpu/*.py"), *root.glob("cuda/*.py")])
    for path in [*libraries, root / "numpy_rules.py"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def machine_tag() -> str:
    """What compiled code depends on besides its source: numba's version, the CPU and
    graphc's own kernel library."""
    from llvmlite import binding

    features = binding.get_host_cpu_features().flatten()
    return (
        f"numba {numba.__version__}; cpu {binding.get_host_cpu_name()}; {features}; "
        f"library {_library_digest()}"
    )


def file_name(name: str) -> str:
    """The file of module `name` on this machine: the name plus a digest of the machine."""
    digest = hashlib.sha256(machine_tag().encode()).hexdigest()[:12]
    return f"{name}_{digest}.py"


def _holds(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def _write_once(path: Path, text: str) -> None:
    """Make `path` hold `text`, atomically: an existing file with the same text is left
    alone (numba's cache of it stays valid); any other file there is replaced whole."""
    if _holds(path, text):
        return
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            os.link(temporary, path)
        except FileExistsError:
            if not _holds(path, text):  # not another process's identical file
                os.replace(temporary, path)
                return
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def load_generated(source: str) -> ModuleType:
    """The module of generated `source`, named by a digest of its text without comments
    (see kernels/text.py): loaded once per process however many graphs generate it."""
    return load(text.without_comments(source), text.module_name(source))


def load(source: str, name: str) -> ModuleType:
    """Module `name` holding `source`: from this process if loaded before, else from the
    cache directory (written there first if new). Registered in sys.modules under
    `name`, so generated modules can import each other."""
    with _LOCK:
        module = _LOADED.get(name)
        if module is not None:
            return module
        path = directory() / file_name(name)
        _write_once(path, source)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:  # pragma: no cover - importlib contract
            raise ImportError(f"cannot load generated module {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _LOADED[name] = module
        return module
