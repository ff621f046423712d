"""Small numba helpers that generated CPU code calls: numpy's integer and float edge
cases for division, modulo and powers, NaN-propagating extrema, reassociable adds
and multiplies and NaN-blind extrema for vectorized reductions, and the matmul kernels.

Part of graphc.kernels. The scalar helpers are ``inline="always"`` so a fused loop
that uses them still vectorizes. ``radd`` and ``rmul`` (compiled with
``fastmath={"reassoc"}``) are *not* inlined by numba: LLVM inlines them later and keeps
the flags on that one instruction, which lets the loop vectorizer split a reduction
into vector lanes without licensing reassociation anywhere else (the vectorized exp/log
in vmath depend on exact evaluation order); ``rmax`` and ``rmin`` are LLVM's maxnum and
minnum with no-NaN flags on the one call, for the same reason.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

from graphc.kernels import numpy_rules
from graphc.kernels.cpu.jit import OPTIONS, kernel

inline = numba.njit(**OPTIONS)


class FeedShapeError(ValueError):
    """What an entry raises, before any kernel runs, for a feed whose static size is not
    the declared one: the runtime then validates the feeds, which raises the user's
    InputError saying what is wrong (the fast path skips that check)."""


@numba.njit(fastmath={"reassoc"}, **OPTIONS)
def radd(a, b):
    return a + b


@numba.njit(fastmath={"reassoc"}, **OPTIONS)
def rmul(a, b):
    return a * b


def _extremum(name: str):  # type: ignore[no-untyped-def]
    def typer(typingctx, a, b):  # type: ignore[no-untyped-def]
        if not isinstance(a, types.Float) or a != b:
            return None

        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            ty = args[0].type
            suffix = "f32" if ty == ir.FloatType() else "f64"
            function_type = ir.FunctionType(ty, [ty, ty])
            fn = cgutils.get_or_insert_function(builder.module, function_type, name + suffix)
            return builder.call(fn, args, fastmath=("nnan", "nsz"))

        return a(a, b), codegen

    return typer


# The larger / smaller of a and b, NaN aside: LLVM's maxnum / minnum with the no-NaN and
# no-signed-zero flags on the call, which its loop vectorizer turns into a vector max
# reduction (the caller tracks NaN itself). A select written in Python came out as a
# branch whose flags LLVM could not see: the reduction stayed scalar (W6's row max over
# 4096x1024 floats: 4.8 -> 1.4 ms).
rmax = intrinsic(_extremum("llvm.maxnum."))
rmin = intrinsic(_extremum("llvm.minnum."))


# numpy's rules both targets share (kernels/numpy_rules.py)
maxnan = inline(numpy_rules.maxnan)
minnan = inline(numpy_rules.minnan)
ifloordiv = inline(numpy_rules.ifloordiv)
imod = inline(numpy_rules.imod)


@inline
def _divmod(a, b):
    """numpy's npy_divmod for floats: (floor quotient, remainder with b's sign)."""
    if a != a or b != b or np.isinf(a):
        # numpy's answer for a NaN operand or an infinite dividend (fmod is NaN there)
        return a - a + np.nan, a - a + np.nan
    mod = np.fmod(a, b)
    div = (a - mod) / b
    if mod != 0 or mod != mod:
        if (b < 0) != (mod < 0):
            mod += b
            div -= 1.0
    else:
        mod = np.copysign(mod - mod, b)
    if div != 0 or div != div:
        floor = np.floor(div)
        if div - floor > 0.5:
            floor += 1.0
    else:
        floor = np.copysign(div - div, a / b)
    return floor, mod


@inline
def fmod_numpy(a, b):
    """numpy remainder on floats (the sign of the divisor)."""
    if b == 0:
        return np.fmod(a, b)
    return _divmod(a, b)[1]


@inline
def ffloordiv(a, b):
    """numpy floor_divide on floats."""
    if b == 0:
        return a / b
    return _divmod(a, b)[0]


_power_by_squaring = inline(numpy_rules.power_by_squaring)
fsign = inline(numpy_rules.fsign)


@inline
def ipow(a, b):
    """numpy power on ints: repeated squaring with wrap-around."""
    if b < 0:
        raise ValueError("Integers to negative integer powers are not allowed.")
    return _power_by_squaring(a, b)


@kernel
def matmul_loops(a, b, out):
    """out = a @ b for 2-D operands of any dtype numpy's matmul takes (ints, bools)."""
    m, k = a.shape
    n = b.shape[1]
    for i in range(m):
        for j in range(n):
            out[i, j] = 0
        for p in range(k):
            x = a[i, p]
            for j in range(n):
                out[i, j] += x * b[p, j]


@kernel
def dot(a, b, out):
    """out = a @ b for 2-D float operands (BLAS). A helper rather than `np.dot` written
    in the entry, so that the Python entry (runtime/interpreted.py) calls the same BLAS
    as the compiled one: numpy's own BLAS may round differently, and its threads spin
    against the other library's."""
    np.dot(a, b, out)


@kernel
def matmul_batched(a, b, out):
    """out[i] = a[i or 0] @ b[i or 0] over a leading batch axis (size-1 batches broadcast)."""
    batch = out.shape[0]
    for i in range(batch):
        ai = a[i if a.shape[0] != 1 else 0]
        bi = b[i if b.shape[0] != 1 else 0]
        np.dot(np.ascontiguousarray(ai), np.ascontiguousarray(bi), out[i])


@kernel
def matmul_batched_loops(a, b, out):
    batch = out.shape[0]
    for i in range(batch):
        ai = a[i if a.shape[0] != 1 else 0]
        bi = b[i if b.shape[0] != 1 else 0]
        matmul_loops(ai, bi, out[i])


@kernel
def argextreme3(x, out, find_max):
    """out[i, j] = argmax / argmin of x[i, :, j]: the first extremum, the first NaN if any."""
    outer, n, inner = x.shape
    if n == 0:
        raise ValueError("attempt to get argmax or argmin of an empty sequence")
    for i in range(outer):
        for j in range(inner):
            best = 0
            value = x[i, 0, j]
            if value == value:
                for p in range(1, n):
                    v = x[i, p, j]
                    if v != v:
                        best = p
                        break
                    if (v > value) if find_max else (v < value):
                        best = p
                        value = v
            out[i, j] = best


@kernel
def carve(arena, start, stop, shape, dtype):
    """Bytes [start, stop) of the arena as a C-contiguous array of `shape` and `dtype`.

    One compiled helper per dtype and rank: written inline, each view and reshape
    cost the entry's compile about 50 ms."""
    return arena[start:stop].view(dtype).reshape(shape)


@kernel
def dot_rows(a, b, out, start, stop):
    """out[: stop - start] = a[start:stop] @ b (BLAS), for a matmul run by row panels;
    rows of an F-ordered `a` (a transpose) are copied first, one panel at a time."""
    np.dot(np.ascontiguousarray(a[start:stop]), b, out[: stop - start])


@kernel
def dot_span(a, b, out, start, stop):
    """out[: stop - start] = a[start:stop] @ b (BLAS): all of an F-ordered `a` (a
    transpose) is read in place, with BLAS's transpose flag; a part of it is copied."""
    if start == 0 and stop == a.shape[0]:
        np.dot(a, b, out[: stop - start])
    else:
        np.dot(np.ascontiguousarray(a[start:stop]), b, out[: stop - start])


@kernel
def scratch(rows, cols, dtype):
    """A new (rows, cols) array. A call numba cannot hoist: an `np.empty` in a prange
    body may be moved out of the loop and shared by the threads."""
    return np.empty((rows, cols), dtype)


# ---- the types a kernel is called with (see codegen.Kernel)
#
# A kernel is compiled ahead of its first call, in another process, for the argument
# types its call site will pass (codegen.Kernel.signature). Whether numba types an
# array as C-contiguous or of any layout, or as read-only, depends on how the caller
# made it; these casts make each array argument's type exactly the declared one.
# They cost nothing at run time: every layout has the same data model.


def _layout_cast(layout: str):  # type: ignore[no-untyped-def]
    def typer(typingctx, array):  # type: ignore[no-untyped-def]
        if not isinstance(array, types.Array):
            return None
        result = types.Array(array.dtype, array.ndim, layout)

        def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
            return impl_ret_borrowed(context, builder, result, args[0])

        return result(array), codegen

    return typer


as_c = intrinsic(_layout_cast("C"))
as_c.__doc__ = "A C-contiguous array, typed as a writable C-layout array."
as_f = intrinsic(_layout_cast("F"))
as_f.__doc__ = "An F-contiguous array (a transposed matrix), typed as a writable F-layout array."
as_a = intrinsic(_layout_cast("A"))
as_a.__doc__ = "Any array, typed as a writable array of any layout (strided)."


# ---- calling a compiled kernel through its address (see codegen.Writer.call_kernel)
#
# A kernel called the usual way is linked into its caller: the entry's module would get
# a copy of every kernel's code, which LLVM may inline and optimize again (into code
# that need not round as the kernel alone does). Called through its address instead, a
# kernel is compiled once, in its own module, and every caller runs that code. The
# entry reads the address from a symbol of this process (`register`), named after the
# kernel's module and argument types, so its cached code is valid in every process.

_REGISTERED: dict[str, tuple[Any, tuple, Any]] = {}  # symbol -> (dispatcher, types, cell)
_REGISTER_LOCK = threading.Lock()


def register(symbol: str, dispatcher: Any, argtypes: tuple) -> None:
    """Make `symbol` hold the address of `dispatcher`'s compiled code for `argtypes`
    (it must be compiled), for the entries that call it (`invoke`); once per process."""
    with _REGISTER_LOCK:
        if symbol in _REGISTERED:
            return
        compiled = dispatcher.overloads[argtypes]
        address = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
        cell = ctypes.c_int64(int(address))  # (kept alive here: the symbol points at it)
        llvm.add_symbol(symbol, ctypes.addressof(cell))
        _REGISTERED[symbol] = (dispatcher, argtypes, cell)


def registered(symbol: str) -> tuple[Any, tuple] | None:
    """The (dispatcher, argument types) registered under `symbol`, if any."""
    found = _REGISTERED.get(symbol)
    return None if found is None else found[:2]


def _unliteral(t: types.Type) -> types.Type:
    if isinstance(t, types.BaseTuple):
        return types.BaseTuple.from_types([_unliteral(item) for item in t.types])
    return types.unliteral(t)


@intrinsic(prefer_literal=True)
def invoke(typingctx, symbol, args):  # type: ignore[no-untyped-def]
    """invoke("symbol", (args...)): call the kernel registered under `symbol` (its
    compiled code for exactly the types of `args`; int literals count as intp). Typing
    refuses an unregistered symbol or other types: a call through an address cannot
    check them at run time."""
    if not isinstance(symbol, types.StringLiteral) or not isinstance(args, types.BaseTuple):
        raise TypingError('lib.invoke takes "symbol" and a tuple of arguments')
    found = registered(symbol.literal_value)
    if found is None:
        raise TypingError(f"no kernel is registered as {symbol.literal_value}")
    dispatcher, declared = found
    given = tuple(args.types)
    argtypes = tuple(_unliteral(t) for t in given)
    if argtypes != declared:
        raise TypingError(f"a kernel compiled for {declared} is called with {argtypes}")
    restype = dispatcher.overloads[declared].signature.return_type
    name = symbol.literal_value

    def codegen(context, builder, signature, llargs):  # type: ignore[no-untyped-def]
        packed = llargs[1]
        values = [
            context.cast(builder, builder.extract_value(packed, i), t, u)
            for i, (t, u) in enumerate(zip(given, argtypes, strict=True))
        ]
        cell = builder.module.globals.get(name)
        if cell is None:
            cell = ir.GlobalVariable(builder.module, ir.IntType(64), name)
            cell.linkage = "external"
        function_type = context.call_conv.get_function_type(restype, argtypes)
        pointer = builder.inttoptr(builder.load(cell), function_type.as_pointer())
        status, result = context.call_conv.call_function(
            builder, pointer, restype, argtypes, values
        )
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return result

    return restype(symbol, args), codegen
