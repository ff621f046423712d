"""CPU emitters of control flow: cond, scan and while_loop run inside the entry function.

Part of graphc.kernels. kernels/control_writer.py writes the statements (a body inline
in the `if`, `for` or `while` that runs it, written by a `BodyWriter`); the CPU entry
writer (codegen.Writer) says how this target does what it leaves to one. So the loop
runs in compiled code, its body's kernels are the usual shared kernels (compiled with
the rest), and the Python entry (runtime/interpreted.py) runs the same text.
"""

from __future__ import annotations

from graphc.ir import Graph
from graphc.kernels import control_writer
from graphc.kernels.control_writer import BodyWriting
from graphc.kernels.cpu.codegen import Writer, _expand


class BodyWriter(BodyWriting, Writer):
    """Writes one body's statements for an enclosing CPU writer."""

    def __init__(self, outer: Writer, body: Graph) -> None:
        program = control_writer.body_program(body, outer.program)
        super().__init__(program, outer.parallel, outer.min_parallel, outer.threads, outer.rows)
        self.kernels = outer.kernels  # (one registry: the entry's kernels, the bodies' too)
        self.prefix = outer.temp("b") + "_"

    def finished_lines(self) -> list[str]:
        return _expand(self)  # (writes the chunked kernels' calls)

    def fresh(self, expression: str, index: int) -> str:
        """Result `index`'s `expression` as a C-contiguous array of its own (a carry, or
        a branch's result: the variable holding it must have one type in numba)."""
        value = self.graph.outputs[index]
        if expression.endswith(".copy()"):
            return expression
        if self.type_of(value).ndim == 0:
            return f"{expression}.copy()"
        if self.is_contiguous(value) and self.program.home[value] == "fresh":
            return expression
        return f"np.ascontiguousarray({expression})"


control_writer.register("cpu")
