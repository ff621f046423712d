"""Inline a loop kernel's source into the entry function, so a graph compiles as one
numba function.

Part of graphc.kernels. Numba compiles every `@njit` function on its own: type
inference, lowering, an LLVM module, its optimization and machine code, and a
CPython wrapper. For a graph of twenty kernels that fixed cost, paid per kernel,
was most of the compile time. The code generator therefore writes each kernel as a
function (readable, testable on its own) and pastes its body into the entry here:
every local name gets the call's prefix, each parameter becomes an assignment from
the call's argument, and calls to the other functions of the same source (a matmul
panel's epilogue) are inlined the same way. Kernels have no `return`, so a body
pasted inside a loop means what the call meant.
"""

from __future__ import annotations

import ast
import copy


class _Rename(ast.NodeTransformer):
    def __init__(self, local: set[str], prefix: str, bound: dict[str, ast.expr]) -> None:
        self.local = local
        self.prefix = prefix
        self.bound = bound  # parameters replaced by their argument

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in self.bound:
            return ast.copy_location(copy.deepcopy(self.bound[node.id]), node)
        if node.id in self.local:
            return ast.copy_location(ast.Name(self.prefix + node.id, node.ctx), node)
        return node


def _stored(fn: ast.FunctionDef) -> set[str]:
    return {
        node.id
        for node in ast.walk(fn)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }


def _functions(source: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(source)
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


class Inliner:
    """Turns calls of a kernel source's `kernel` function into statements."""

    def __init__(self) -> None:
        self._count = 0

    def statements(self, source: str, args: list[str]) -> list[str]:
        """The lines that do what `kernel(*args)` of `source` does; `args` are
        expressions evaluated once, in order, before the body runs."""
        functions = _functions(source)
        body = self._inline(functions, "kernel", [ast.parse(a, mode="eval").body for a in args])
        return [line for stmt in body for line in ast.unparse(stmt).splitlines()]

    def _inline(
        self, functions: dict[str, ast.FunctionDef], name: str, args: list[ast.expr]
    ) -> list[ast.stmt]:
        fn = functions[name]
        params = [a.arg for a in fn.args.args]
        if len(params) != len(args):
            raise TypeError(f"{name} takes {len(params)} arguments, the call gives {len(args)}")
        self._count += 1
        prefix = f"k{self._count}_"
        stored = _stored(fn)
        # a parameter never assigned whose argument is a name or a number is replaced by
        # it; any other is assigned once (numba compile time grows with every statement)
        bound = {
            p: arg
            for p, arg in zip(params, args, strict=True)
            if p not in stored and isinstance(arg, ast.Name | ast.Constant)
        }
        out: list[ast.stmt] = [
            ast.Assign([ast.Name(prefix + p, ast.Store())], arg, lineno=0)
            for p, arg in zip(params, args, strict=True)
            if p not in bound
        ]
        rename = _Rename(stored | set(params), prefix, bound)
        body = [
            rename.visit(copy.deepcopy(stmt))
            for stmt in fn.body
            if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))
        ]  # (a docstring is dropped)
        return out + self._block(body, functions)

    def _block(
        self, block: list[ast.stmt], functions: dict[str, ast.FunctionDef]
    ) -> list[ast.stmt]:
        """`block` with calls to functions of the source, as statements, inlined."""
        new: list[ast.stmt] = []
        for stmt in block:
            call = stmt.value if isinstance(stmt, ast.Expr) else None
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id in functions
            ):
                new += self._inline(functions, call.func.id, list(call.args))
                continue
            for field in ("body", "orelse"):
                inner = getattr(stmt, field, None)
                if isinstance(inner, list):
                    setattr(stmt, field, self._block(inner, functions))
            new.append(stmt)
        return new
