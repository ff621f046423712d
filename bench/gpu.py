"""The workloads on an NVIDIA GPU: graphc's device="cuda" against PyTorch CUDA.

    python bench/gpu.py [--budget SECONDS] [--only W1,W6]      (make bench-gpu)

Needs a GPU, numba-cuda and torch with CUDA. Every workload starts from the shared
seeded data of workloads.py; graphc's and torch's results are checked against numpy's
before anything is timed. Inputs are on the device for both systems (graphc takes the
torch tensors through __cuda_array_interface__, without a copy), and each timed call
ends with the device idle (graphc synchronizes its stream; torch is synchronized after
the call), so the columns compare device work plus each system's launch overhead.
W4 is also timed host-to-host (numpy in, numpy out), as a user calls it. W2's step
returns the loss to the host in both systems. Prints a table of medians and ratios.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import timing
import workloads


def _torch() -> Any:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu.py: torch sees no CUDA device")
    return torch


def _synchronized(torch: Any, fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        result = fn()
        torch.cuda.synchronize()
        return result

    return run


def _graphc_cases(torch: Any) -> dict[str, Callable[[], Any]]:
    import graphc_workloads as gw

    gw.DEVICE = "cuda"
    cases: dict[str, Callable[[], Any]] = {}
    x, y = workloads.w1_data()
    xd, yd = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    w1 = gw.w1()
    workloads.check_close("W1", w1(xd, yd), workloads.numpy_w1(x, y), rtol=1e-4, atol=1e-5)
    cases["W1"] = lambda: w1.run_on_device(xd, yd)

    params = workloads.mlp_params()
    images, labels = workloads.mlp_batch(workloads.W2_BATCH)
    step, _ = gw.w2_train_step(params)
    reference = params.copy()
    workloads.check_loss(
        "W2", step(images, labels), workloads.numpy_train_step(reference, images, labels)
    )
    images_d, labels_d = torch.from_numpy(images).cuda(), torch.from_numpy(labels).cuda()
    cases["W2"] = lambda: step(images_d, labels_d)

    for batch in workloads.W3_BATCHES:
        batch_images, _ = workloads.mlp_batch(batch)
        predict = gw.w3_predict(workloads.mlp_params())
        wanted = workloads.numpy_mlp_forward(workloads.mlp_params(), batch_images)
        workloads.check_close(f"W3 b{batch}", predict(batch_images), wanted, rtol=1e-3, atol=1e-4)
        on_device = torch.from_numpy(batch_images).cuda()
        cases[f"W3 b{batch}"] = lambda p=predict, d=on_device: p.run_on_device(d)

    w4_x = workloads.w4_data()
    w4 = gw.w4()
    workloads.check_close("W4", w4(w4_x), workloads.numpy_w4(w4_x), rtol=0, atol=0)
    cases["W4 host"] = lambda: w4(w4_x)
    w4_d = torch.from_numpy(w4_x).cuda()
    cases["W4"] = lambda: w4.run_on_device(w4_d)

    w6_x = workloads.w6_data()
    w6 = gw.w6()
    workloads.check_close("W6", w6(w6_x), workloads.numpy_w6(w6_x), rtol=1e-4, atol=1e-6)
    w6_d = torch.from_numpy(w6_x).cuda()
    cases["W6"] = lambda: w6.run_on_device(w6_d)
    return cases


def _torch_cases(torch: Any) -> dict[str, Callable[[], Any]]:
    cases: dict[str, Callable[[], Any]] = {}
    x, y = workloads.w1_data()
    xd, yd = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

    def w1() -> Any:
        return torch.tanh(0.5 * xd + yd) * torch.sigmoid(yd) - torch.exp(-xd * xd) + 0.1 * yd

    workloads.check_close(
        "torch W1", w1().cpu().numpy(), workloads.numpy_w1(x, y), rtol=1e-4, atol=1e-5
    )
    cases["W1"] = _synchronized(torch, w1)

    def parameters(grad: bool) -> list[Any]:
        return [
            torch.tensor(a, device="cuda", requires_grad=grad)
            for a in workloads.mlp_params().as_list()
        ]

    def logits(h: Any, ps: list[Any]) -> Any:
        layers = len(ps) // 2
        for i in range(layers):
            h = torch.addmm(ps[2 * i + 1], h, ps[2 * i])
            h = torch.relu(h) if i < layers - 1 else h
        return h

    images, labels = workloads.mlp_batch(workloads.W2_BATCH)
    images_d, labels_d = torch.from_numpy(images).cuda(), torch.from_numpy(labels).cuda()
    trained = parameters(True)

    def w2() -> float:
        loss = torch.nn.functional.cross_entropy(logits(images_d, trained), labels_d)
        loss.backward()
        with torch.no_grad():
            for p in trained:
                p.sub_(p.grad, alpha=workloads.LEARNING_RATE)
                p.grad = None
        return loss.item()

    cases["W2"] = w2
    frozen = parameters(False)
    for batch in workloads.W3_BATCHES:
        on_device = torch.from_numpy(workloads.mlp_batch(batch)[0]).cuda()

        def w3(d: Any = on_device) -> Any:
            with torch.no_grad():
                return logits(d, frozen)

        cases[f"W3 b{batch}"] = _synchronized(torch, w3)
    w4_x = workloads.w4_data()
    w4_d = torch.from_numpy(w4_x).cuda()
    cases["W4 host"] = lambda: (torch.from_numpy(w4_x).cuda() + 1).cpu().numpy()
    cases["W4"] = _synchronized(torch, lambda: w4_d + 1)
    w6_d = torch.from_numpy(workloads.w6_data()).cuda()
    cases["W6"] = _synchronized(torch, lambda: torch.softmax(w6_d, dim=-1))
    return cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=2.0, help="seconds of timing per case")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W6")
    args = parser.parse_args()
    torch = _torch()
    cases = {"graphc": _graphc_cases(torch), "torch": _torch_cases(torch)}
    wanted = [w for w in cases["graphc"] if not args.only or w.split()[0] in args.only.split(",")]
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}")
    print(f"{'workload':10} {'graphc':>12} {'torch':>12} {'torch/graphc':>13}")
    for name in wanted:
        medians = [timing.measure(cases[s][name], args.budget).median_s for s in cases]
        g, t = medians
        print(f"{name:10} {g * 1e3:10.4f}ms {t * 1e3:10.4f}ms {t / g:12.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
