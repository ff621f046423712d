"""Generated source text (kernels/text.py): the compiled text of a module is its source
without comments, found without the tokenizer where the text allows, and always the
tokenizer's answer."""

from __future__ import annotations

import io
import tokenize

import numpy as np
import pytest

import graphc as gc
from graphc.kernels import text


def _tokenized(source: str) -> str:
    """without_comments as the tokenizer alone computes it."""
    plain = text._plain_comments
    text._plain_comments = lambda lines: None  # type: ignore[assignment]
    try:
        return text.without_comments(source)
    finally:
        text._plain_comments = plain


def _tokenizer_cuts(source: str) -> dict[int, int]:
    return {
        token.start[0] - 1: token.start[1]
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }


PLAIN = [
    "def f(x):\n    # %3 = add {name='a # b', dtype=\"f4\"} : float32[]\n    return x\n",
    "d0 = dims[0]  # images.0\ny = d0 + 1\n",
    '"""graphc generated module: one line."""\n\n# k0: sym, add -> mul\nx = 1\n',
    "    # indented comment only\n",
    "x = (1 +\n     # inside brackets\n     2)\n",
]
TRICKY = [  # (source, its compiled text)
    ('x = "a # not a comment"  # a comment\n', 'x = "a # not a comment"\n'),
    ("x = '#'\n", "x = '#'\n"),
    ('x = """\n# inside a string\n"""\n', 'x = """\n# inside a string\n"""\n'),
    ("x = '''a\n# b\n'''  # c\n", "x = '''a\n# b\n'''\n"),
    ('x = "a \\\n# continued"\n', 'x = "a \\\n# continued"\n'),
    ("x = 1 + \\\n    2  # after a continuation\n", "x = 1 + \\\n    2\n"),
]


@pytest.mark.parametrize("source", PLAIN)
def test_plain_text_skips_the_tokenizer_and_agrees_with_it(source: str) -> None:
    assert text._plain_comments(source.split("\n")) == _tokenizer_cuts(source)
    assert text.without_comments(source) == _tokenized(source)
    assert "#" not in text.without_comments(source)


@pytest.mark.parametrize(("source", "compiled"), TRICKY)
def test_text_only_the_tokenizer_can_read_falls_back_to_it(source: str, compiled: str) -> None:
    assert text._plain_comments(source.split("\n")) is None
    assert text.without_comments(source) == compiled


def _sources(name: str) -> list[str]:
    """The entry and kernel sources of a small graph with placeholder `name`."""
    x = gc.placeholder((None, 6), "float32", name=name)
    w = gc.Variable(np.ones((6, 3), np.float32), name="w")
    y = gc.softmax(gc.tanh(x @ w) * 2.0, axis=-1)
    f = gc.function([x], [y, gc.sum(y)], device="cpu")
    return [f.source] + [k.source for k in f._executable.generated.kernels]


def test_generated_modules_take_the_fast_path_and_agree() -> None:
    for source in _sources("x"):
        assert text._plain_comments(source.split("\n")) == _tokenizer_cuts(source)
        assert text.without_comments(source) == _tokenized(source)
        assert "#" not in text.without_comments(source)


def test_names_with_quotes_and_hashes_still_agree() -> None:
    """A user's name lands in comments, after code on some lines: the tokenizer decides."""
    for source in _sources("x # 'quoted' \"name\""):
        assert text.without_comments(source) == _tokenized(source)
        assert "quoted" not in text.without_comments(source)
