"""An LSTM and a GRU written with graphc.scan against torch.nn.LSTM and torch.nn.GRU with
the same weights: outputs, final states and every gradient, to 1e-5 (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

torch = pytest.importorskip("torch")

T, B, IN, H = 5, 3, 4, 6


def _lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    def step(state, xt):
        h, c = state
        gates = xt @ gc.transpose(w_ih) + b_ih + h @ gc.transpose(w_hh) + b_hh
        i, f, g, o = (gates[:, k * H : (k + 1) * H] for k in range(4))
        c = gc.sigmoid(f) * c + gc.sigmoid(i) * gc.tanh(g)
        h = gc.sigmoid(o) * gc.tanh(c)
        return (h, c), h

    (h, c), ys = gc.scan(step, (h0, c0), x)
    return ys, h, c


def _gru(x, h0, w_ih, w_hh, b_ih, b_hh):
    def step(h, xt):
        gi = xt @ gc.transpose(w_ih) + b_ih
        gh = h @ gc.transpose(w_hh) + b_hh
        r = gc.sigmoid(gi[:, :H] + gh[:, :H])
        z = gc.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
        n = gc.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
        h = (1.0 - z) * n + z * h
        return h, h

    h, ys = gc.scan(step, h0, x)
    return ys, h


def _compare(kind: str, device: str, rng: np.random.Generator) -> None:
    gates = 4 if kind == "lstm" else 3
    module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(IN, H).double()
    params = [p.detach().numpy().copy() for p in module.parameters()]  # w_ih, w_hh, b_ih, b_hh
    rows = gates * H
    assert [p.shape for p in params] == [(rows, IN), (rows, H), (rows,), (rows,)]
    x = rng.standard_normal((T, B, IN))
    h0 = rng.standard_normal((B, H))
    c0 = rng.standard_normal((B, H))
    projection = rng.standard_normal((T, B, H))

    # torch
    tx = torch.tensor(x, requires_grad=True)
    th0 = torch.tensor(h0[None], requires_grad=True)
    tc0 = torch.tensor(c0[None], requires_grad=True)
    if kind == "lstm":
        ys, (th, tc) = module(tx, (th0, tc0))
        loss = (ys * torch.tensor(projection)).sum() + (th**2).sum() + (tc**3).sum()
    else:
        ys, th = module(tx, th0)
        loss = (ys * torch.tensor(projection)).sum() + (th**2).sum()
    loss.backward()
    expected_grads = [tx.grad.numpy(), th0.grad.numpy()[0]]
    if kind == "lstm":
        expected_grads.append(tc0.grad.numpy()[0])
    expected_grads += [p.grad.numpy() for p in module.parameters()]

    # graphc
    px = gc.placeholder((None, B, IN), "float64", name="x")
    ph0 = gc.placeholder((B, H), "float64", name="h0")
    pc0 = gc.placeholder((B, H), "float64", name="c0")
    variables = [gc.Variable(p, name=f"p{k}") for k, p in enumerate(params)]
    proj = gc.constant(projection)
    if kind == "lstm":
        gys, gh, gcell = _lstm(px, ph0, pc0, *variables)
        gloss = gc.sum(gys * proj) + gc.sum(gh**2) + gc.sum(gcell**3)
        wrt = [px, ph0, pc0, *variables]
        inputs = [px, ph0, pc0]
        feeds = [x, h0, c0]
    else:
        gys, gh = _gru(px, ph0, *variables)
        gloss = gc.sum(gys * proj) + gc.sum(gh**2)
        wrt = [px, ph0, *variables]
        inputs = [px, ph0]
        feeds = [x, h0]
    fn = gc.function(inputs, [gloss, gys, *gc.grad(gloss, wrt)], device=device)
    got_loss, got_ys, *got_grads = fn(*feeds)
    np.testing.assert_allclose(got_loss, loss.item(), rtol=1e-10)
    np.testing.assert_allclose(got_ys, ys.detach().numpy(), rtol=1e-10, atol=1e-12)
    for got, expected in zip(got_grads, expected_grads, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_scan_rnns_match_torch_forward_and_backward(kind: str, device: str, rng) -> None:
    torch.manual_seed(0)
    _compare(kind, device, rng)
