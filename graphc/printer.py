"""IR → text, one line per node; used by `repr`, error messages, tests and the CLI.

Part of the IR core.

    graph(%0 x: float32[x.0,10]) -> (float32[x.0,4]):
      %0 = placeholder {dtype='float32', name='x', shape=(None, 10)} : float32[x.0,10]  # x
      %2 = matmul %0, %1 : float32[x.0,4]
      return %2
"""

from __future__ import annotations

from graphc.ir import Graph, Node, Value


def _attrs_text(n: Node) -> str:
    """The attributes as `{k=v, ...}`, a sub-graph as `@k` (format_graph prints it below)."""
    parts = [f"{k}=@{k}" if isinstance(v, Graph) else f"{k}={v!r}" for k, v in n.attrs.items()]
    return "{" + ", ".join(parts) + "}"


def format_node(n: Node) -> str:
    """One node as `%id = op inputs {attrs} : types  # name @ origin`."""
    results = ", ".join(str(v) for v in n.outputs) or "()"
    line = f"{results} = {n.op}"
    if n.inputs:
        line += " " + ", ".join(str(v) for v in n.inputs)
    if n.attrs:
        line += f" {_attrs_text(n)}"
    line += " : " + ", ".join(str(t) for t in n.types)
    notes = [x for x in (n.name, f"@ {n.origin}" if n.origin else None) if x]
    if notes:
        line += "  # " + " ".join(notes)
    return line


def _signature_entry(g: Graph, value: Value) -> str:
    n = g.node(value)
    label = f"{value} {n.name}" if n.name else str(value)
    return f"{label}: {g.type_of(value)}"


def format_graph(g: Graph, indent: str = "", head: str = "graph") -> str:
    """The whole graph: signature line, one line per node, return and update lines. A
    control-flow node's bodies follow its line as indented regions, `@name graph(...)`."""
    params = ", ".join(_signature_entry(g, v) for v in g.inputs)
    results = ", ".join(str(g.type_of(v)) for v in g.outputs)
    lines = [f"{indent}{head}({params}) -> ({results}):"]
    for n in g.nodes:
        lines.append(f"{indent}  {format_node(n)}")
        for key, value in n.attrs.items():
            if isinstance(value, Graph):
                lines.append(format_graph(value, indent + "    ", f"@{key} graph"))
    lines.append(f"{indent}  return " + ", ".join(str(v) for v in g.outputs))
    lines += [f"{indent}  update %{var} <- {value}" for var, value in g.updates]
    return "\n".join(lines)


def format_excerpt(g: Graph, node_id: int, context: int = 5) -> str:
    """The printed IR around one node, the node itself marked with `>>`."""
    position = next((i for i, n in enumerate(g.nodes) if n.id == node_id), 0)
    start, stop = max(0, position - context), position + context + 1
    return "\n".join(
        (">> " if i == position else "   ") + format_node(n)
        for i, n in enumerate(g.nodes[start:stop], start)
    )
