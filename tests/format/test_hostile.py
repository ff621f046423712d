"""Untrusted files: every malformed, truncated, spliced or hostile file raises FormatError
(with the path and the reason), never another exception, a hang or a memory blow-up."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc import format as fileformat


def _valid_bytes(tmp: Path) -> bytes:
    x = gc.placeholder((None, 3), "float32", name="x")
    w = gc.Variable(np.arange(6, dtype="float32").reshape(3, 2), name="w")
    out = gc.softmax(x @ w + np.float32(1.5), axis=-1)
    fn = gc.function([x], [out, gc.sum(out)], updates={w: w * np.float32(0.5)})
    gc.save(tmp / "valid.graphc", fn)
    return (tmp / "valid.graphc").read_bytes()


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> bytes:
    return _valid_bytes(tmp_path_factory.mktemp("valid"))


def _load_bytes(tmp: Path, data: bytes, name: str = "f.graphc"):
    path = tmp / name
    path.write_bytes(data)
    return gc.load(path, device="reference")


def _rewrite(data: bytes, change) -> bytes:
    """The archive with its manifest passed through `change` (members kept as they are)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(source.read("graphc.json"))
    change(manifest)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        target.writestr("graphc.json", json.dumps(manifest))
        for name in source.namelist():
            if name != "graphc.json":
                target.writestr(name, source.read(name))
    return out.getvalue()


def _expect(tmp: Path, data: bytes, reason: str) -> None:
    with pytest.raises(gc.FormatError, match=reason) as caught:
        _load_bytes(tmp, data)
    assert str(tmp / "f.graphc") in str(caught.value)  # the message names the file


def test_the_valid_file_loads(valid: bytes, tmp_path: Path) -> None:
    fn = _load_bytes(tmp_path, valid)
    probs, total = fn(np.ones((2, 3), "float32"))
    assert probs.shape == (2, 2)
    assert np.isclose(total, 2.0)


def _nodes(manifest):
    return manifest["graph"]["nodes"]


def _node(manifest, op):
    return next(n for n in _nodes(manifest) if n["op"] == op)


def _set(path, value):
    def change(manifest):
        target = manifest
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


CRAFTED = {
    "not a zip": (lambda d: b"hello, this is not a graphc file", "not a readable zip"),
    "empty file": (lambda d: b"", "not a readable zip"),
    "truncated": (lambda d: d[: len(d) // 2], "not a readable zip|truncated|corrupt"),
    "another zip": (lambda d: _zip({"readme.txt": b"hi"}), "graphc.json' is missing"),
    "not json": (lambda d: _zip({"graphc.json": b"{nope"}), "not valid JSON"),
    "other format": (
        lambda d: _rewrite(d, _set(["format"], "onnx")),
        "does not say format 'graphc'",
    ),
    "future version": (
        lambda d: _rewrite(d, _set(["format_version"], 99)),
        f"format version 99 .* newer than the version {gc.FORMAT_VERSION}",
    ),
    "version zero": (lambda d: _rewrite(d, _set(["format_version"], 0)), "unknown format version"),
    "unknown op": (
        lambda d: _rewrite(
            d, lambda m: _node(m, "softmax" if False else "matmul").update(op="evil")
        ),
        "unknown op 'evil'",
    ),
    "bad attribute": (
        lambda d: _rewrite(d, lambda m: _node(m, "max").update(attrs={"axes": "all"})),
        "node .* \\(max\\)",
    ),
    "missing attribute": (
        lambda d: _rewrite(d, lambda m: _node(m, "placeholder")["attrs"].pop("dtype")),
        "missing attribute 'dtype'",
    ),
    "declared type differs": (
        lambda d: _rewrite(d, lambda m: _node(m, "matmul")["types"][0].update(shape=["x.0", 7])),
        "declares types .* but they infer as",
    ),
    "dangling reference": (
        lambda d: _rewrite(d, lambda m: _node(m, "matmul").update(inputs=[[999, 0], [1, 0]])),
        "dangling reference or a cycle",
    ),
    "cycle": (
        lambda d: _rewrite(d, lambda m: _nodes(m)[0].update(inputs=[[_nodes(m)[-1]["id"], 0]])),
        "dangling reference or a cycle",
    ),
    "duplicate node id": (
        lambda d: _rewrite(d, lambda m: _nodes(m)[1].update(id=_nodes(m)[0]["id"])),
        "appears twice",
    ),
    "array dtype contradicts": (
        lambda d: _rewrite(d, lambda m: next(iter(m["arrays"].values())).update(dtype="float64")),
        "but the manifest declares",
    ),
    "array shape contradicts": (
        lambda d: _rewrite(
            d, lambda m: next(iter(m["arrays"].values())).update(shape=[100000, 100000])
        ),
        "too large|but the manifest declares",
    ),
    "undeclared array": (
        lambda d: _rewrite(d, lambda m: m["arrays"].clear()),
        "used but not declared",
    ),
    "variable without value": (
        lambda d: _rewrite(d, lambda m: m["variables"].clear()),
        "has no saved value",
    ),
    "update of a non-variable": (
        lambda d: _rewrite(
            d, lambda m: m["graph"]["updates"][0].__setitem__(0, _node(m, "matmul")["id"])
        ),
        "not a variable",
    ),
    "signature mismatch": (
        lambda d: _rewrite(d, lambda m: m["signature"]["inputs"][0].update(dtype="float64")),
        "signature entry 'x'",
    ),
    "undeclared placeholder": (
        lambda d: _rewrite(
            d,
            lambda m: (
                m["graph"].update(inputs=[]),
                m["signature"].update(inputs=[]),
            ),
        ),
        "are used but are not distinct inputs",
    ),
    "an input listed twice": (
        lambda d: _rewrite(
            d,
            lambda m: (
                m["graph"].update(inputs=m["graph"]["inputs"] * 2),
                m["signature"].update(inputs=m["signature"]["inputs"] * 2),
            ),
        ),
        "not distinct inputs",
    ),
    "unknown pass": (lambda d: _rewrite(d, _set(["pipeline"], ["rm -rf"])), "unknown optimization"),
    "deep json": (
        lambda d: _zip({"graphc.json": b"[" * 100000 + b"]" * 100000}),
        "not valid JSON|does not say format",
    ),
    "path in member name": (
        lambda d: _zip({"graphc.json": b"{}", "../evil.npy": b"x"}),
        "not a plain relative path",
    ),
    "absolute member name": (
        lambda d: _zip({"graphc.json": b"{}", "/etc/passwd": b"x"}),
        "not a plain relative path",
    ),
    "duplicate members": (
        lambda d: _zip([("graphc.json", b"{}"), ("graphc.json", b"{}")]),
        "appears twice",
    ),
    "pickled array": (
        lambda d: _replace_first_array(d, _npy_header("|O", (1,)) + b"\x80\x04N."),
        "not one graphc uses|not a valid .npy",
    ),
    "array too short": (
        lambda d: _replace_first_array(d, _npy_header("<f4", (3, 2)) + b"\x00" * 8),
        "holds 8 bytes, its shape needs 24",
    ),
}


def _zip(members) -> bytes:
    out = io.BytesIO()
    items = members.items() if isinstance(members, dict) else members
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in items:
            if isinstance(name, str) and name.startswith(("/", "..")):
                info = zipfile.ZipInfo("placeholder")
                info.filename = name  # zipfile would sanitize the name otherwise
                archive.writestr(info, content)
            else:
                with (
                    pytest.warns(UserWarning, match="Duplicate name")
                    if _seen(out, name)
                    else _nothing()
                ):
                    archive.writestr(name, content)
    return out.getvalue()


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *args):
        return False


def _seen(out: io.BytesIO, name: str) -> bool:
    return name.encode() in out.getvalue()


def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _replace_first_array(data: bytes, content: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    first = next(n for n in source.namelist() if n.startswith("arrays/"))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, content if name == first else source.read(name))
    return out.getvalue()


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_files_raise_format_error(case: str, valid: bytes, tmp_path: Path) -> None:
    make, reason = CRAFTED[case]
    _expect(tmp_path, make(valid), reason)


def test_a_decompression_bomb_is_refused_before_inflating(valid: bytes, tmp_path: Path) -> None:
    """A member that declares far more bytes than the file holds is refused from the
    directory alone: here 8 GiB of zeros squeezed by deflate, declared honestly."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("graphc.json", b"{}")
        info = zipfile.ZipInfo("arrays/0.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, b"\x00" * (4 << 20))  # 4 MiB deflates to about 4 KiB
    data = bytearray(out.getvalue())
    # claim 8 GiB in the central directory's uncompressed-size field of the array member
    directory = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, directory + 24, 0xFFFFFFF0)
    _expect(tmp_path, bytes(data), "decompression bomb")


def test_a_missing_file_is_not_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        gc.load(tmp_path / "nowhere.graphc")


MUTATIONS = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 30), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 30), st.just(0)),
    st.tuples(st.just("splice"), st.integers(0, 1 << 30), st.integers(0, 1 << 30)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 30), st.integers(0, 255)),
)


def _mutate(data: bytes, other: bytes, mutations) -> bytes:
    buffer = bytearray(data)
    for kind, a, b in mutations:
        if not buffer:
            break
        at = a % len(buffer)
        if kind == "flip":
            buffer[at] ^= b
        elif kind == "truncate":
            del buffer[at:]
        elif kind == "splice":
            start = b % len(other)
            buffer[at:] = other[start:]
        else:
            buffer.insert(at, b)
    return bytes(buffer)


def _loads_or_format_error(tmp: Path, data: bytes) -> None:
    error = None
    try:
        _load_bytes(tmp, data, "fuzz.graphc")
    except gc.FormatError as caught:
        error = caught
    if error is not None:  # any other exception fails the test
        assert error.reason
        assert "fuzz.graphc" in str(error)


@settings(max_examples=150, deadline=None)
@given(mutations=st.lists(MUTATIONS, min_size=1, max_size=4))
def test_fuzzed_archives_load_or_raise_format_error(
    valid: bytes, tmp_path_factory, mutations
) -> None:
    """Byte flips, truncations, insertions and splices with another valid file."""
    tmp = tmp_path_factory.mktemp("fuzz", numbered=True)
    other = _zip({"graphc.json": json.dumps({"format": "graphc"}).encode()})
    _loads_or_format_error(tmp, _mutate(valid, other + valid, mutations))


def _json_paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _json_paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _json_paths(v, (*path, i))


REPLACEMENTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["x.0", "float32", "int64", "add", "variable", "fused", "arrays/0.npy"]),
    st.lists(st.integers(-3, 300), max_size=4),
    st.just({"int": "99999999999999999999999"}),
    st.just({"float": "nan"}),
    st.just({"array": "arrays/1.npy"}),
)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fuzzed_manifests_load_or_raise_format_error(valid: bytes, tmp_path_factory, data) -> None:
    """A well-formed archive whose manifest has one value anywhere replaced (or deleted)."""
    tmp = tmp_path_factory.mktemp("manifest", numbered=True)
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(valid)).read("graphc.json"))
    paths = [p for p in _json_paths(manifest) if p]
    path = data.draw(st.sampled_from(paths))
    target = manifest
    for key in path[:-1]:
        target = target[key]
    if data.draw(st.booleans()) and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = data.draw(REPLACEMENTS)
    rewritten = _rewrite(valid, lambda m: (m.clear(), m.update(manifest)))
    _loads_or_format_error(tmp, rewritten)


def test_format_error_is_a_value_error_with_path_and_reason(tmp_path: Path) -> None:
    (tmp_path / "f.graphc").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a graphc file") as caught:
        gc.load(tmp_path / "f.graphc")
    assert isinstance(caught.value, gc.FormatError)
    assert caught.value.path == str(tmp_path / "f.graphc")
    assert "zip" in caught.value.reason
    assert fileformat.FORMAT_VERSION >= 1


@pytest.mark.parametrize("device", ["cpu", "reference"])
@pytest.mark.parametrize("field", ["origin", "name"])
@pytest.mark.parametrize("line_break", ["\n", "\r", "\x0c", "\u2028", "\x85"])
def test_text_that_ends_a_line_never_becomes_code(
    valid: bytes, tmp_path: Path, device: str, field: str, line_break: str
) -> None:
    """A node's origin or name goes into a comment of the generated code: a line break in
    it must not end the comment and run the rest as Python when the file loads."""
    marker = tmp_path / "ran"
    payload = f"x.py:1{line_break}open({str(marker)!r}, 'w').write('x'){line_break}#"

    def change(manifest: dict) -> None:
        for node in _nodes(manifest):  # every node: fusion keeps some names and origins
            if field == "origin" or node["op"] not in ("placeholder", "variable"):
                node[field] = payload

    path = tmp_path / "f.graphc"
    path.write_bytes(_rewrite(valid, change))
    fn = gc.load(path, device=device)
    expected = gc.load(tmp_path / "f.graphc", device="reference")
    feed = np.ones((2, 3), "float32")
    np.testing.assert_allclose(fn(feed)[1], expected(feed)[1], rtol=1e-6)
    assert not marker.exists()
    assert f"{line_break}open(" not in fn.source  # escaped in the comment


def test_a_reduction_with_no_axes_attribute_value_is_a_format_error(valid, tmp_path: Path) -> None:
    """Found by the fuzz test above: `axes: null` on a sum reached its type rule."""

    def change(manifest: dict) -> None:
        for node in manifest["graph"]["nodes"]:
            if node["op"] == "sum":
                node["attrs"]["axes"] = None
                return
        raise AssertionError("the valid file has no sum")

    _expect(tmp_path, _rewrite(valid, change), "axes")
