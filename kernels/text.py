"""Generated source text, shared by both code generators: tuple expressions, products
of sizes, indentation, comments that cannot become code, the compiled text of a module
and its name.

Part of graphc.kernels. A generated module is named by a digest of the text numba
compiles (its source without comments), so graphs and processes that generate the
same kernel share one module, one file in the compile cache and one compiled function.
"""

from __future__ import annotations

import hashlib
import io
import tokenize


def tuple_expr(items: list[str]) -> str:
    """A tuple expression of `items`: `(a,)` for one, `()` for none."""
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def product(factors: list[str]) -> str:
    """The product of size expressions, int literals folded first: "1" for none, "0"
    when one is 0, `10 * d0` for ["2", "d0", "5"]."""
    known = 1
    rest = []
    for factor in factors:
        if factor.isdigit():
            known *= int(factor)
        else:
            rest.append(factor)
    if known == 0 or not rest:
        return str(known)
    return " * ".join(rest if known == 1 else [str(known), *rest])


def indent(lines: list[str], depth: int = 1) -> list[str]:
    """`lines` indented by `depth` levels of four spaces."""
    return ["    " * depth + line for line in lines]


def comment(text: str) -> str:
    """`text` safe in a one-line comment of generated code: every character that is not
    printable (a newline, any other line break, a control character) is escaped, so
    names and source lines read from a file can never end the comment and become code."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def without_comments(source: str) -> str:
    """`source` without its comments and the lines they leave empty: the text that is
    compiled. Generated code comments each statement with its IR line, which holds
    node ids, user names and source lines; two graphs that compute alike compile to
    the same text, so they share one module and its machine code."""
    # (tokenize ends lines at "\n" only; str.splitlines would also split at \x0c, \u2028...)
    lines = source.split("\n")
    cuts = _plain_comments(lines)
    if cuts is None:
        cuts = {}  # line index -> column where its comment starts
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                cuts[token.start[0] - 1] = token.start[1]
    kept = []
    for number, line in enumerate(lines):
        if number in cuts:
            line = line[: cuts[number]].rstrip()
            if not line:
                continue
        kept.append(line)
    return "\n".join(kept).rstrip("\n") + "\n"


def _plain_comments(lines: list[str]) -> dict[int, int] | None:
    """Where each line's comment starts, found without tokenizing, for the text the
    code generators write, where no string spans lines: a line that starts with "#" is
    a comment, and so is the rest of a line without quotes from its "#" on. None when
    a line breaks those rules (code with a quote and a "#", a triple-quoted string left
    open, a line continued by a backslash): then only the tokenizer can tell."""
    cuts = {}
    for number, line in enumerate(lines):
        if line.count('"""') % 2 or line.count("'''") % 2 or line.endswith("\\"):
            return None
        column = line.find("#")
        if column < 0:
            continue
        if line[:column].strip() and ('"' in line or "'" in line):
            return None
        cuts[number] = column
    return cuts


def module_name(source: str) -> str:
    """The name of the module holding generated `source`: a digest of its compiled text."""
    return "graphc_" + hashlib.sha256(without_comments(source).encode()).hexdigest()[:24]
