"""W5: build the W2 training step in a new process and print its first loss.

    python bench/w5_child.py --system graphc

run.py times this process from exec to the line `loss <value>` on stdout (graphc in its
default compile mode, "auto"), with
GRAPHC_CACHE_DIR (and NUMBA_CACHE_DIR) pointing at an empty directory (cold) or at
one a previous run filled (warm). Nothing is imported before it is needed: the
imports are part of what W5 measures.
"""

from __future__ import annotations

import argparse
import sys


def first_loss(system: str) -> float:
    import workloads

    params = workloads.mlp_params()
    images, labels = workloads.mlp_batch(workloads.W2_BATCH)
    if system == "graphc":
        import graphc_workloads

        # graphc.function's default compile mode ("auto"), as a user's first run gets it
        step, _ = graphc_workloads.w2_train_step(params, compile="auto")
        return float(step(images, labels))
    if system == "torch":
        import torch_workloads

        torch_step, _ = torch_workloads.w2_train_step(params, images, labels)
        return torch_step()
    return float(workloads.numpy_train_step(params, images, labels))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--system", default="graphc", choices=("graphc", "numpy", "torch"))
    args = parser.parse_args()
    print(f"loss {first_loss(args.system)!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
