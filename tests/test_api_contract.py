"""The public API of ../shared/design/API.md: every op function it names exists in graphc
and has a row in the op table (tests/opinfo.py)."""

from __future__ import annotations

import re
from pathlib import Path

import opinfo
import pytest

import graphc as gc

API_MD = Path(__file__).resolve().parents[2] / "shared" / "design" / "API.md"


def op_functions_named_in_api_md(text: str) -> set[str]:
    """Identifiers in backticks of API.md's "Ops" section that name a function: called
    there (`name(`), or exported by graphc as a callable with a lowercase name."""
    section = text.split("## Ops", 1)[1].split("\n## ", 1)[0]
    names = set()
    for span in re.findall(r"`([^`]*)`", section):
        span = re.sub(r"\(([^()]*)\)", "(", span)  # parameter names (where's cond) are not ops
        for name, called in re.findall(r"(?<![.\w=\"'])([A-Za-z_]\w*)(\()?", span):
            if called or (name[0].islower() and callable(getattr(gc, name, None))):
                names.add(name)
    return names


def test_every_op_of_api_md_is_in_the_op_table() -> None:
    if not API_MD.exists():
        pytest.skip("API.md lives in ../shared beside the repository, absent in this checkout")
    named = op_functions_named_in_api_md(API_MD.read_text())
    assert len(named) > 80
    assert sorted(named - set(opinfo.API_OPS)) == []
    assert sorted(name for name in named if not callable(getattr(gc, name, None))) == []


def test_the_parser_finds_called_and_exported_names() -> None:
    text = "## Ops\n- `add subtract` and `clip(x, lo, hi)`; `axis` an int\n## Next\n`exp`"
    assert op_functions_named_in_api_md(text) == {"add", "subtract", "clip"}
    # a parameter that happens to share a function's name is no op
    assert op_functions_named_in_api_md("## Ops\n`where(cond, a, b)`\n") == {"where"}
