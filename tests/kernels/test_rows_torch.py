"""The row kernels against their PyTorch twins: softmax, log_softmax, layer_norm and
cross-entropy (torch.nn.functional), forward and backward, compiled for the CPU, in
float32 and float64, on a 3-D batch with rows wider than a float32 sum's block."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import graphc as gc

SHAPE = (3, 5, 150)


def _tolerance(dtype: str) -> dict[str, float]:
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == "float32" else {"rtol": 1e-11, "atol": 1e-12}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_row_layers_match_pytorch_forward_and_backward(dtype: str) -> None:
    rng = np.random.default_rng(11)
    x_np = (rng.standard_normal(SHAPE) * 3).astype(dtype)
    g_np = rng.standard_normal(SHAPE[-1]).astype(dtype)
    b_np = rng.standard_normal(SHAPE[-1]).astype(dtype)
    r_np = rng.standard_normal(SHAPE).astype(dtype)
    labels_np = rng.integers(0, SHAPE[-1], SHAPE[:-1])

    x = gc.placeholder((None, *SHAPE[1:]), dtype, name="x")
    gamma = gc.placeholder(SHAPE[-1:], dtype, name="gamma")
    beta = gc.placeholder(SHAPE[-1:], dtype, name="beta")
    r = gc.placeholder((None, *SHAPE[1:]), dtype, name="r")
    labels = gc.placeholder((None, SHAPE[1]), "int64", name="labels")
    ys = [gc.softmax(x), gc.log_softmax(x), gc.layer_norm(x, gamma, beta)]
    loss = gc.mean(gc.softmax_cross_entropy(x, labels))
    for y in ys:
        loss = loss + gc.sum(y * r)
    fn = gc.function([x, gamma, beta, r, labels], [*ys, loss, *gc.grad(loss, [x, gamma, beta])],
                     device="cpu")  # fmt: skip
    assert any(n.op == "fused" and n.attrs["kind"] == "row" for n in fn.graph.nodes)
    got = fn(x_np, g_np, b_np, r_np, labels_np)

    xt = torch.tensor(x_np, requires_grad=True)
    gt = torch.tensor(g_np, requires_grad=True)
    bt = torch.tensor(b_np, requires_grad=True)
    rt = torch.tensor(r_np)
    yt = [
        F.softmax(xt, dim=-1),
        F.log_softmax(xt, dim=-1),
        F.layer_norm(xt, (SHAPE[-1],), gt, bt, eps=1e-5),
    ]
    logits = xt.reshape(-1, SHAPE[-1])
    lt = F.cross_entropy(logits, torch.tensor(labels_np).reshape(-1))
    for y in yt:
        lt = lt + (y * rt).sum()
    lt.backward()
    want = [*(y.detach().numpy() for y in yt), lt.detach().numpy()]
    want += [xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), w, **_tolerance(dtype))
