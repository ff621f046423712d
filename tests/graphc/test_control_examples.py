"""The control-flow examples run end to end on the default device (the CPU backend
here): the Newton solver checks its loop's gradients against the implicit function
theorem, and the character-level LSTM learns well below the unigram entropy."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_newton_solver_example_runs_and_checks_its_gradients(capsys, monkeypatch) -> None:
    monkeypatch.setenv("GRAPHC_DEVICE", "cpu")
    runpy.run_path(str(EXAMPLES / "newton_solver.py"), run_name="__main__")  # (it asserts)
    assert "residual" in capsys.readouterr().out


def test_the_char_rnn_example_learns_below_the_unigram_entropy(monkeypatch) -> None:
    monkeypatch.setenv("GRAPHC_DEVICE", "cpu")
    main = runpy.run_path(str(EXAMPLES / "char_rnn.py"))["main"]
    final, unigram, written = main(150)
    assert final < 0.85 * unigram  # the context helps: well below a unigram model
    assert len(written) == 241  # the first character and 240 sampled ones
