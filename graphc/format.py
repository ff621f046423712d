"""`graphc.save` and `graphc.load`: one `.graphc` file per compiled function.

Orchestration, on top of the IR core (it rebuilds Functions, as `function.py` does).

The file is a zip archive:

    graphc.json       the manifest: format name and version, producer version, the
                      signature, the graph (nodes, attributes, declared types), the
                      variables and a declaration (dtype, shape) of every array
    arrays/<n>.npy    each array: variable values and constant attributes, in numpy's
                      .npy layout, read back without pickling

Nothing in a file is executable: kernels are regenerated from the op registry on load.
A file is untrusted input. `load` checks the archive (member names, sizes against the
file's bytes, CRCs), the manifest's schema, every array against its declaration before
allocating it, and the graph (known ops, valid attributes, inputs defined before use,
declared types equal to the types inferred again), then verifies the rebuilt graph.
Anything wrong raises `FormatError` naming the path and the reason.

The graph saved is the one the function was defined with (before optimization), unless
the function was itself loaded from an optimized file (`graphc optimize`): then the
optimized graph is saved with `optimized: true`, and loading it runs only the memory
planner.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from graphc.errors import (
    ArgumentError,
    ArgumentTypeError,
    FileError,
    FormatError,
    GraphcError,
    InternalError,
)
from graphc.ir import Graph, GraphBuilder, Node, Value
from graphc.registry import Attrs, ConstArray
from graphc.state import VariableState

if TYPE_CHECKING:
    from graphc.tensor import Tensor

FORMAT_VERSION = 2
# Changelog of FORMAT_VERSION (a reader reads every version up to its own):
#   1  graphc 0.1.0: graphc.json manifest + arrays/<n>.npy; attributes tagged by type
#      (floats as hex, arrays by member name, fused bodies as lists of steps).
#   2  control flow: an attribute may be a sub-graph, {"graph": {"nodes", "inputs",
#      "outputs"}}, its nodes written as the top level's are (no variables, no updates).

FORMAT_NAME = "graphc"
MANIFEST = "graphc.json"
DTYPES = ("bool", "int32", "int64", "float32", "float64")
MAX_MANIFEST_BYTES = 256 << 20
# a member may declare at most this many bytes per byte it takes in the file (deflate's
# best ratio is about 1,000), plus a little: more is a decompression bomb
MAX_EXPANSION = 1100
SLACK_BYTES = 1 << 16


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


class _Arrays:
    """The arrays of a file being written: each one a member `arrays/<n>.npy`."""

    def __init__(self) -> None:
        self.members: dict[str, np.ndarray] = {}

    def add(self, array: np.ndarray) -> str:
        name = f"arrays/{len(self.members)}.npy"
        self.members[name] = np.asarray(array, order="C")  # (ascontiguousarray makes 0-d 1-d)
        return name


def _encode_float(value: float) -> dict[str, str]:
    return {"float": float(value).hex()}  # exact, and JSON has no NaN or inf


def _encode_attr(value: Any, arrays: _Arrays) -> Any:
    """An attribute value as JSON: tuples become lists, everything else is tagged."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        return _encode_float(value)
    if isinstance(value, tuple):
        return [_encode_attr(v, arrays) for v in value]
    if isinstance(value, ConstArray):
        return {"array": arrays.add(value.array)}
    if isinstance(value, Attrs):
        return {"attrs": {k: _encode_attr(v, arrays) for k, v in value.items()}}
    if isinstance(value, Graph):
        return {
            "graph": {
                "nodes": [_encode_node(n, arrays) for n in value.nodes],
                "inputs": [_encode_value(v) for v in value.inputs],
                "outputs": [_encode_value(v) for v in value.outputs],
            }
        }
    raise InternalError(f"cannot save an attribute value of type {type(value).__name__}")


def _encode_type(t: Any) -> dict[str, Any]:
    return {"dtype": t.dtype.name, "shape": [d if isinstance(d, int) else str(d) for d in t.shape]}


def _encode_value(v: Value) -> list[int]:
    return [v.node, v.index]


def _encode_node(n: Node, arrays: _Arrays) -> dict[str, Any]:
    return {
        "id": n.id,
        "op": n.op,
        "inputs": [_encode_value(v) for v in n.inputs],
        "attrs": {k: _encode_attr(v, arrays) for k, v in n.attrs.items()},
        "types": [_encode_type(t) for t in n.types],
        "name": n.name,
        "origin": n.origin,
    }


def manifest_of(fn: Any, arrays: _Arrays) -> dict[str, Any]:
    """The manifest of Function `fn`; its arrays go into `arrays`."""
    from graphc import __version__

    graph, optimized = fn.saved_form()
    states = fn.variables_by_node()
    variables = []
    nodes = []
    for n in graph.nodes:
        nodes.append(_encode_node(n, arrays))
        if n.op == "variable":
            variable = states[n.id]
            variables.append(
                {
                    "node": n.id,
                    "trainable": variable.trainable,
                    "array": arrays.add(variable.get_state()),
                }
            )
    kind, detail = fn.structure
    structure: dict[str, Any] = {"kind": kind if isinstance(kind, str) else kind.__name__}
    if kind == "dict":
        structure["keys"] = [str(k) for k in detail]
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "producer": f"graphc {__version__}",
        "optimized": optimized,
        "pipeline": list(fn.pipeline),
        "signature": {
            "inputs": [_encode_spec(s) for s in fn.inputs],
            "outputs": [_encode_spec(s) for s in fn.outputs],
            "structure": structure,
        },
        "graph": {
            "nodes": nodes,
            "inputs": [_encode_value(v) for v in graph.inputs],
            "outputs": [_encode_value(v) for v in graph.outputs],
            "updates": [[var, _encode_value(v)] for var, v in graph.updates],
        },
        "variables": variables,
        "arrays": {
            name: {"dtype": a.dtype.name, "shape": list(a.shape)}
            for name, a in arrays.members.items()
        },
    }


def _encode_spec(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "dtype": spec.dtype.name, "shape": list(spec.shape)}


def save(path: str | os.PathLike[str], fn: Any) -> None:
    """Write Function `fn` to `path` as one .graphc file, atomically: the file is written
    beside `path` under a temporary name, flushed to disk, then renamed over `path`, so
    a crash mid-save leaves any earlier file at `path` intact."""
    from graphc.function import Function

    if not isinstance(fn, Function):
        raise ArgumentTypeError(f"graphc.save needs a graphc.Function, got {type(fn).__name__}")
    path = _checked_path(path)
    with fn.update_locks():  # a consistent set of values, none of them half updated
        _save_locked(path, fn)


def _save_locked(path: str, fn: Any) -> None:
    arrays = _Arrays()
    manifest = manifest_of(fn, arrays)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".graphc-", suffix=".tmp")
    except OSError as error:
        raise _file_error(error, path) from None
    try:
        with os.fdopen(handle, "wb") as raw:
            _write_archive(raw, manifest, arrays)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(temporary, _file_mode(path))
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _file_error(error, path) from None
        raise


def _checked_path(path: Any) -> str:
    """`path` as a str: paths may be str or os.PathLike (bytes paths are refused)."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise ArgumentTypeError(
            f"a path must be a str or os.PathLike, got {type(path).__name__}"
        ) from None
    if not isinstance(path, str):
        raise ArgumentTypeError("a path must be a str or os.PathLike of str, got bytes")
    if "\0" in path:
        raise ArgumentError(f"a path cannot hold a NUL character: {path!r:.80}")
    return path


def _file_error(error: OSError, path: str) -> FileError:
    """An OSError of graphc.save as a FileError with the same errno."""
    reason = error.strerror or str(error)
    return FileError(error.errno, f"cannot write {path}: {reason}", path)


def _file_mode(path: str) -> int:
    """The permissions a new file at `path` gets: those of the file it replaces, else
    the usual ones under the process's umask (mkstemp's own are owner-only)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def _write_archive(raw: Any, manifest: dict[str, Any], arrays: _Arrays) -> None:
    with zipfile.ZipFile(raw, "w", allowZip64=True) as archive:
        text = json.dumps(manifest, indent=1, allow_nan=False).encode()
        archive.writestr(MANIFEST, text, compress_type=zipfile.ZIP_DEFLATED)
        for name, array in arrays.members.items():
            with archive.open(name, "w", force_zip64=array.nbytes > (1 << 30)) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


# --------------------------------------------------------------------------------------
# Reading: the archive
# --------------------------------------------------------------------------------------


class _Reader:
    """A .graphc archive opened for checked reading."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.size = os.path.getsize(path)
            self.archive = zipfile.ZipFile(path)
            infos = self.archive.infolist()
        except FileNotFoundError:
            raise
        except OSError as error:  # a directory, no permission, a device that fails to read
            reason = error.strerror or type(error).__name__
            raise self.error(f"not a readable graphc file ({reason})") from None
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            EOFError,
            ValueError,
            NotImplementedError,  # a zip version or feature zipfile cannot read
        ) as error:
            raise self.error(f"not a graphc file: not a readable zip archive ({error})") from None
        self.members: dict[str, zipfile.ZipInfo] = {}
        declared = 0
        for info in infos:
            self._check_member(info)
            declared += info.file_size
        if declared > MAX_EXPANSION * self.size + SLACK_BYTES:
            raise self.error(
                f"the members declare {declared} bytes, far beyond the file's {self.size} "
                "bytes (a decompression bomb?)"
            )

    def error(self, reason: str) -> FormatError:
        return FormatError(self.path, reason)

    def _check_member(self, info: zipfile.ZipInfo) -> None:
        name = info.filename
        parts = name.split("/")
        if (
            not name
            or name.startswith("/")
            or "\\" in name
            or ":" in name
            or any(part in ("", ".", "..") for part in parts)
        ):
            raise self.error(f"member name {name!r} is not a plain relative path")
        if name in self.members:
            raise self.error(f"member {name!r} appears twice")
        if info.flag_bits & 0x1:
            raise self.error(f"member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self.error(f"member {name!r} uses an unsupported compression method")
        if info.file_size > MAX_EXPANSION * max(info.compress_size, 1) + SLACK_BYTES:
            raise self.error(
                f"member {name!r} declares {info.file_size} bytes from {info.compress_size} "
                "compressed bytes (a decompression bomb?)"
            )
        self.members[name] = info

    def read(self, name: str, limit: int) -> bytes:
        info = self.members.get(name)
        if info is None:
            raise self.error(f"member {name!r} is missing")
        if info.file_size > limit:
            raise self.error(f"member {name!r} is too large ({info.file_size} bytes)")
        try:
            with self.archive.open(info) as member:
                data = member.read(info.file_size + 1)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as error:
            raise self.error(f"member {name!r} is corrupt ({error})") from None
        except Exception as error:  # zlib.error and kin from a damaged stream
            raise self.error(f"member {name!r} is corrupt ({error})") from None
        if len(data) != info.file_size:
            raise self.error(f"member {name!r} is truncated")
        return data

    def array(self, name: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        """Member `name` as an array, which must be of `dtype` and `shape` as declared;
        checked from the .npy header before anything of that size is allocated."""
        expected = np.dtype(dtype).itemsize * math.prod(shape) + 1024
        data = self.read(name, expected + 65536)
        stream = io.BytesIO(data)
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(stream)
            elif version in ((2, 0), (3, 0)):
                header = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"unknown .npy version {version}")
        except (ValueError, TypeError, SyntaxError) as error:
            raise self.error(f"member {name!r} is not a valid .npy array ({error})") from None
        found_shape, fortran, found_dtype = header
        if found_dtype.hasobject or found_dtype.name not in DTYPES:
            raise self.error(f"array {name!r} has dtype {found_dtype}, not one graphc uses")
        if found_dtype.name != dtype or tuple(found_shape) != shape:
            raise self.error(
                f"array {name!r} is {found_dtype.name}{list(found_shape)}, but the manifest "
                f"declares {dtype}{list(shape)}"
            )
        body = data[stream.tell() :]
        nbytes = found_dtype.itemsize * math.prod(shape)
        if len(body) != nbytes:
            raise self.error(f"array {name!r} holds {len(body)} bytes, its shape needs {nbytes}")
        flat = np.frombuffer(body, dtype=found_dtype, count=math.prod(shape))
        array = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
        return np.array(array, dtype=found_dtype.newbyteorder("="), order="C")


# --------------------------------------------------------------------------------------
# Reading: the manifest's schema
# --------------------------------------------------------------------------------------


class _Schema:
    """Typed accessors that turn any deviation of the manifest into a FormatError."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader

    def fail(self, where: str, reason: str) -> FormatError:
        return self.reader.error(f"{where}: {reason}")

    def obj(self, value: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {type(value).__name__}")
        missing = [k for k in keys if k not in value]
        if missing:
            raise self.fail(where, f"missing field(s) {missing}")
        return value

    def list(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {type(value).__name__}")
        return value

    def int(self, value: Any, where: str, low: int = 0) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise self.fail(where, f"expected an int >= {low}, got {value!r:.80}")
        return value

    def str(self, value: Any, where: str, optional: bool = False) -> Any:
        if optional and value is None:
            return None
        if not isinstance(value, str) or len(value) > 4096:
            raise self.fail(where, f"expected a string, got {value!r:.80}")
        return value

    def bool(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {value!r:.80}")
        return value

    def dtype(self, value: Any, where: str) -> str:
        if value not in DTYPES:
            raise self.fail(where, f"unknown dtype {value!r:.80}")
        return value

    def shape(self, value: Any, where: str, symbolic: bool) -> tuple[Any, ...]:
        dims = []
        for i, d in enumerate(self.list(value, where)):
            if symbolic and isinstance(d, str) and d:
                dims.append(self.str(d, f"{where}[{i}]"))
            elif symbolic and d is None:
                dims.append(None)
            else:
                dims.append(self.int(d, f"{where}[{i}]"))
        return tuple(dims)

    def value(self, value: Any, where: str) -> tuple[int, int]:
        pair = self.list(value, where)
        if len(pair) != 2:
            raise self.fail(where, f"a value reference is [node, index], got {value!r:.80}")
        return self.int(pair[0], f"{where}[0]"), self.int(pair[1], f"{where}[1]")


def _decode_attr(value: Any, where: str, schema: _Schema, array_of: Callable[[str], Any]) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, list):
        return tuple(
            _decode_attr(v, f"{where}[{i}]", schema, array_of) for i, v in enumerate(value)
        )
    if not isinstance(value, dict) or len(value) != 1:
        raise schema.fail(where, f"unknown attribute encoding {value!r:.80}")
    ((tag, content),) = value.items()
    if tag == "int" and isinstance(content, str) and len(content) <= 40:
        try:
            return int(content)
        except ValueError:
            pass
    elif tag == "float" and isinstance(content, str) and len(content) <= 40:
        try:
            return float.fromhex(content)
        except (ValueError, OverflowError):
            pass
    elif tag == "array" and isinstance(content, str):
        return ConstArray(array_of(content))
    elif tag == "graph" and isinstance(content, dict):
        return _decode_graph(content, where, schema, array_of)
    elif tag == "attrs" and isinstance(content, dict):
        return Attrs(
            {
                schema.str(k, where): _decode_attr(v, f"{where}.{k}", schema, array_of)
                for k, v in content.items()
            }
        )
    raise schema.fail(where, f"bad {tag!r} attribute {content!r:.80}")


def _declared_types(node: dict[str, Any], where: str, schema: _Schema) -> list[tuple]:
    """A node's `types` entry as (dtype, shape) pairs."""
    declared = []
    for j, t in enumerate(schema.list(node["types"], f"{where}.types")):
        t = schema.obj(t, f"{where}.types[{j}]", ("dtype", "shape"))
        dtype = schema.dtype(t["dtype"], f"{where}.types[{j}].dtype")
        declared.append((dtype, schema.shape(t["shape"], f"{where}.types[{j}]", symbolic=True)))
    return declared


class _BodyDecoder:
    """Builds a control-flow body again through a builder of its own: ops known,
    attributes valid, types inferred and compared with the declared ones; only
    placeholders it takes as inputs, and no variables."""

    def __init__(self, where: str, schema: _Schema, array_of: Callable[[str], Any]) -> None:
        self.where, self.schema, self.array_of = where, schema, array_of
        self.builder = GraphBuilder()
        self.values: dict[tuple[int, int], Value] = {}

    def value(self, ref: Any, at: str) -> Value:
        key = self.schema.value(ref, at)
        if key not in self.values:
            raise self.schema.fail(at, f"reads %{key[0]}.{key[1]}, which no earlier node defines")
        return self.values[key]

    def node(self, item: Any, at: str) -> None:
        schema = self.schema
        node = schema.obj(item, at, ("id", "op", "inputs", "attrs", "types"))
        node_id = schema.int(node["id"], f"{at}.id")
        if (node_id, 0) in self.values:
            raise schema.fail(at, f"node id {node_id} appears twice")
        op = schema.str(node["op"], f"{at}.op")
        if op == "variable":
            raise schema.fail(at, "a body has no variables (it reads them as operands)")
        inputs = [
            self.value(ref, f"{at}.inputs[{j}]")
            for j, ref in enumerate(schema.list(node["inputs"], f"{at}.inputs"))
        ]
        attrs = {
            schema.str(k, f"{at}.attrs"): _decode_attr(v, f"{at}.attrs.{k}", schema, self.array_of)
            for k, v in schema.obj(node["attrs"], f"{at}.attrs", ()).items()
        }
        declared = _declared_types(node, at, schema)
        name = schema.str(node.get("name"), f"{at}.name", optional=True)
        origin = schema.str(node.get("origin"), f"{at}.origin", optional=True)
        try:
            outputs = self.builder.add(op, inputs, attrs, name=name, origin=origin)
        except GraphcError as error:
            raise schema.fail(at, f"node {node_id} ({op}): {error}") from None
        inferred = [_plain(self.builder.type_of(v)) for v in outputs]
        if inferred != declared:
            raise schema.fail(
                at,
                f"node {node_id} ({op}) declares types {_show(declared)} but they infer as "
                f"{_show(inferred)}",
            )
        for j, v in enumerate(outputs):
            self.values[(node_id, j)] = v

    def graph(self, content: dict[str, Any]) -> Graph:
        schema, where = self.schema, self.where
        raw = schema.obj(content, where, ("nodes", "inputs", "outputs"))
        for i, item in enumerate(schema.list(raw["nodes"], f"{where}.nodes")):
            self.node(item, f"{where}.nodes[{i}]")
        inputs, outputs = (
            [self.value(r, f"{where}.{key}[{i}]") for i, r in enumerate(refs)]
            for key, refs in (
                ("inputs", schema.list(raw["inputs"], f"{where}.inputs")),
                ("outputs", schema.list(raw["outputs"], f"{where}.outputs")),
            )
        )
        listed = {v.node for v in inputs}
        for value in self.values.values():
            node = self.builder.node(value)
            if (node.op == "placeholder") != (node.id in listed):
                raise schema.fail(
                    where, f"%{node.id} ({node.op}): a body's inputs are its placeholders"
                )
        return self.builder.build(inputs, outputs).renumbered()[0]


def _decode_graph(
    content: dict[str, Any], where: str, schema: _Schema, array_of: Callable[[str], Any]
) -> Graph:
    return _BodyDecoder(where, schema, array_of).graph(content)


def _read_manifest(reader: _Reader) -> dict[str, Any]:
    data = reader.read(MANIFEST, MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise reader.error(f"{MANIFEST} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise reader.error(f"not a graphc file ({MANIFEST} does not say format 'graphc')")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise reader.error(f"unknown format version {version!r:.40}")
    if version > FORMAT_VERSION:
        producer = manifest.get("producer")
        raise reader.error(
            f"format version {version} (written by {producer!s:.40}) is newer than the "
            f"version {FORMAT_VERSION} this graphc reads; upgrade graphc to load it"
        )
    return manifest


# --------------------------------------------------------------------------------------
# Reading: the graph, rebuilt through the builder
# --------------------------------------------------------------------------------------


class _Rebuilder:
    """Builds a file's nodes again through the default builder: ops known, attributes
    valid, types inferred and compared with the declared ones, variables made anew."""

    def __init__(self, reader: _Reader, top: dict[str, Any]) -> None:
        self.reader = reader
        self.schema = schema = _Schema(reader)
        self.arrays: dict[str, tuple[str, tuple[int, ...]]] = {}
        for name, spec in schema.obj(top["arrays"], "arrays", ()).items():
            spec = schema.obj(spec, f"arrays.{name}", ("dtype", "shape"))
            self.arrays[name] = (
                schema.dtype(spec["dtype"], f"arrays.{name}.dtype"),
                schema.shape(spec["shape"], f"arrays.{name}.shape", symbolic=False),
            )
        self.saved_variables: dict[int, dict[str, Any]] = {}
        for i, entry in enumerate(schema.list(top["variables"], "variables")):
            entry = schema.obj(entry, f"variables[{i}]", ("node", "trainable", "array"))
            node_id = schema.int(entry["node"], f"variables[{i}].node")
            if node_id in self.saved_variables:
                raise reader.error(f"variable node {node_id} is listed twice")
            self.saved_variables[node_id] = entry
        # (saved id, index) -> its new Tensor: holding the Tensors keeps the rebuilt
        # nodes alive in the default graph until the Function holds the graph
        self.values: dict[tuple[int, int], Tensor] = {}
        self.states: dict[int, VariableState] = {}  # new variable node id -> its state

    def array(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            raise self.reader.error(f"array {name!r} is used but not declared")
        dtype, shape = self.arrays[name]
        return self.reader.array(name, dtype, shape)

    def node(self, raw: Any, where: str) -> None:
        from graphc.tensor import DEFAULT_BUILDER

        schema = self.schema
        node = schema.obj(raw, where, ("id", "op", "inputs", "attrs", "types"))
        node_id = schema.int(node["id"], f"{where}.id")
        if (node_id, 0) in self.values:
            raise self.reader.error(f"node id {node_id} appears twice")
        op = schema.str(node["op"], f"{where}.op")
        inputs = [
            self.value(ref, f"{where}.inputs[{j}]", f"node {node_id} ({op})")
            for j, ref in enumerate(schema.list(node["inputs"], f"{where}.inputs"))
        ]
        attrs = {
            schema.str(k, f"{where}.attrs"): _decode_attr(
                v, f"{where}.attrs.{k}", schema, self.array
            )
            for k, v in schema.obj(node["attrs"], f"{where}.attrs", ()).items()
        }
        declared = _declared_types(node, where, schema)
        try:
            if op == "variable":
                outputs = self.variable(node_id, attrs)
            else:
                name = schema.str(node.get("name"), f"{where}.name", optional=True)
                origin = schema.str(node.get("origin"), f"{where}.origin", optional=True)
                outputs = DEFAULT_BUILDER.tensors(op, inputs, attrs, name=name, origin=origin)
        except FormatError:
            raise
        except GraphcError as error:
            raise self.reader.error(f"node {node_id} ({op}): {error}") from None
        inferred = [_plain(t.type) for t in outputs]
        if inferred != declared:
            raise self.reader.error(
                f"node {node_id} ({op}) declares types {_show(declared)} but they infer as "
                f"{_show(inferred)}"
            )
        for j, v in enumerate(outputs):
            self.values[(node_id, j)] = v

    def value(self, ref: Any, where: str, reader_name: str) -> Tensor:
        key = self.schema.value(ref, where)
        if key not in self.values:
            raise self.reader.error(
                f"{reader_name} reads %{key[0]}.{key[1]}, which no earlier node defines "
                "(a dangling reference or a cycle)"
            )
        return self.values[key]

    def variable(self, node_id: int, attrs: dict[str, Any]) -> tuple[Tensor, ...]:
        from graphc.tensor import Variable

        schema = self.schema
        entry = self.saved_variables.get(node_id)
        if entry is None:
            raise self.reader.error(f"variable node {node_id} has no saved value")
        name = attrs.get("name")
        if set(attrs) != {"name", "dtype", "shape"} or not isinstance(name, str):
            raise self.reader.error(f"variable node {node_id} has attributes {sorted(attrs)}")
        where = f"variable {node_id}"
        array = self.array(schema.str(entry["array"], f"{where}.array"))
        dtype = schema.dtype(attrs["dtype"], f"{where}.dtype")
        shape = schema.shape(list(attrs["shape"]), f"{where}.shape", symbolic=False)
        if (array.dtype.name, array.shape) != (dtype, shape):
            raise self.reader.error(
                f"variable {name!r} is declared {dtype}{list(shape)} but its value is "
                f"{array.dtype.name}{list(array.shape)}"
            )
        trainable = schema.bool(entry["trainable"], f"{where}.trainable")
        variable = Variable(array, name=name, trainable=trainable)
        self.states[variable.ref.node] = variable.state
        return (variable,)

    def graph(self, raw: Any) -> Graph:
        from graphc.tensor import DEFAULT_BUILDER

        schema = self.schema
        graph = schema.obj(raw, "graph", ("nodes", "inputs", "outputs", "updates"))
        for i, node in enumerate(schema.list(graph["nodes"], "graph.nodes")):
            self.node(node, f"graph.nodes[{i}]")
        missing = [i for i in self.saved_variables if (i, 0) not in self.values]
        if missing:
            raise self.reader.error(f"variables {sorted(missing)} have no node")
        inputs, outputs = (
            [self.value(r, f"graph.{key}[{i}]", f"graph.{key}") for i, r in enumerate(refs)]
            for key, refs in (
                ("inputs", schema.list(graph["inputs"], "graph.inputs")),
                ("outputs", schema.list(graph["outputs"], "graph.outputs")),
            )
        )
        updates = []
        for i, pair in enumerate(schema.list(graph["updates"], "graph.updates")):
            pair = schema.list(pair, f"graph.updates[{i}]")
            if len(pair) != 2:
                raise self.reader.error(f"graph.updates[{i}] is not [variable, value]")
            target = self.value([pair[0], 0], f"graph.updates[{i}][0]", "an update")
            if target.op != "variable":
                raise self.reader.error(f"graph.updates[{i}] updates a node that is not a variable")
            updates.append((target, self.value(pair[1], f"graph.updates[{i}][1]", "an update")))
        graph, _ = DEFAULT_BUILDER.extract(inputs, outputs, updates)
        return graph


def _plain(t: Any) -> tuple[str, tuple[Any, ...]]:
    return t.dtype.name, tuple(d if isinstance(d, int) else str(d) for d in t.shape)


def _show(types: list[tuple[str, tuple[Any, ...]]]) -> str:
    return ", ".join(f"{dtype}{list(shape)}" for dtype, shape in types)


def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checked manifest of the file at `path` and its rebuilt parts (graph, variables)."""
    path = _checked_path(path)
    reader = _Reader(path)
    try:
        manifest = _read_manifest(reader)
        schema = _Schema(reader)
        top = schema.obj(manifest, "manifest", ("signature", "graph", "variables", "arrays"))
        try:
            rebuilder = _Rebuilder(reader, top)
            graph = rebuilder.graph(top["graph"])
        except (RecursionError, OverflowError, MemoryError) as error:
            raise reader.error(f"the graph cannot be rebuilt ({type(error).__name__})") from None
        parts = {"graph": graph, "states": rebuilder.states, "schema": schema}
        parts["manifest"] = manifest
        return manifest, parts
    finally:
        reader.archive.close()


def load(
    path: str | os.PathLike[str],
    *,
    device: str | None = None,
    compile: str = "auto",
) -> Any:
    """The Function saved at `path`, compiled for `device` (`compile` as in
    graphc.function); needs none of the code that defined it. Variables start from
    their saved values; updates keep working."""
    from graphc.function import assemble, check_compile, check_device
    from graphc.passes import PASSES
    from graphc.verify import verify

    device = check_device(device)
    compile_mode = check_compile(compile)
    manifest, parts = read(path)
    reader_error = _error_for(os.fspath(path))
    schema = parts["schema"]
    graph: Graph = parts["graph"]
    signature = schema.obj(manifest["signature"], "signature", ("inputs", "outputs", "structure"))
    inputs = [
        schema.obj(s, f"signature.inputs[{i}]", ("name", "dtype", "shape"))
        for i, s in enumerate(schema.list(signature["inputs"], "signature.inputs"))
    ]
    outputs = [
        schema.obj(s, f"signature.outputs[{i}]", ("name", "dtype", "shape"))
        for i, s in enumerate(schema.list(signature["outputs"], "signature.outputs"))
    ]
    if len(inputs) != len(graph.inputs) or len(outputs) != len(graph.outputs):
        raise reader_error("the signature and the graph have different numbers of values")
    declared = {v.node for v in graph.inputs}
    stray = [n.attrs["name"] for n in graph.nodes if n.op == "placeholder" and n.id not in declared]
    if stray or len(declared) != len(graph.inputs):
        raise reader_error(f"placeholders {stray} are used but are not distinct inputs")
    if len({spec["name"] for spec in inputs}) != len(inputs):
        raise reader_error("two inputs of the signature have the same name")
    for spec, value in zip(inputs, graph.inputs, strict=True):
        node = graph.node(value)
        if node.op != "placeholder" or node.attrs["name"] != spec["name"]:
            raise reader_error(f"signature input {spec['name']!r:.60} is not the graph's input")
    for spec, value in [
        *zip(inputs, graph.inputs, strict=True),
        *zip(outputs, graph.outputs, strict=True),
    ]:
        t = graph.type_of(value)
        shape = [d if isinstance(d, int) else None for d in t.shape]
        if spec["dtype"] != t.dtype.name or spec["shape"] != shape:
            raise reader_error(
                f"signature entry {spec['name']!r:.60} says {spec['dtype']!s:.20}"
                f"{spec['shape']!s:.60}, the graph computes {t}"
            )
    names = [schema.str(s["name"], "signature.outputs.name") for s in outputs]
    structure = _decode_structure(schema, signature["structure"], names)
    pipeline = tuple(
        schema.str(p, "pipeline") for p in schema.list(manifest.get("pipeline"), "pipeline")
    )
    unknown = [p for p in pipeline if p not in PASSES]
    if unknown:
        raise reader_error(f"unknown optimization pass(es) {unknown}")
    optimized = schema.bool(manifest.get("optimized"), "optimized")
    try:
        verify(graph)
    except GraphcError as error:
        raise reader_error(f"the graph does not verify: {error}") from None
    try:
        return assemble(
            graph,
            parts["states"],
            names,
            structure,
            device,
            pipeline,
            optimized=optimized,
            compile_mode=compile_mode,
        )
    except FormatError:
        raise
    except GraphcError as error:
        raise reader_error(f"the graph cannot be compiled: {error}") from None


def _error_for(path: str) -> Callable[[str], FormatError]:
    return lambda reason: FormatError(path, reason)


def _decode_structure(schema: _Schema, raw: Any, names: list[str]) -> Any:
    structure = schema.obj(raw, "signature.structure", ("kind",))
    kind = structure["kind"]
    if kind == "single" and len(names) == 1:
        return ("single", 1)
    if kind in ("list", "tuple"):
        return ({"list": list, "tuple": tuple}[kind], len(names))
    if kind == "dict":
        keys = [
            schema.str(k, "signature.structure.keys")
            for k in schema.list(structure.get("keys"), "keys")
        ]
        if keys == names:
            return ("dict", keys)
    raise schema.fail("signature.structure", f"{raw!r:.80} does not fit {len(names)} outputs")


__all__ = ["FORMAT_VERSION", "load", "read", "save"]
