"""Graph rewrites and the pass manager: the optimizing stage of the pipeline.

Each pass is a function ``Graph -> Graph`` (plus statistics) that returns a new graph and
never mutates the caller's: ``fold``, ``simplify``, ``cse``, ``hoist`` (out of scans'
bodies), ``dce``, ``fuse`` and ``plan_memory``. The pass manager runs an explicit, ordered
pipeline of them, verifies the IR after each pass in debug and test mode, and reports what
each one did. Installed as
``graphc.passes``; it imports only the graphc IR core, never ``graphc.kernels`` or
``graphc.runtime``.
"""

from graphc.passes import cse, dce, fold, fuse, hoist, manager, memory, simplify
from graphc.passes.manager import DEFAULT_PIPELINE, PASSES, PassReport, run_pipeline

__all__ = [
    "DEFAULT_PIPELINE",
    "PASSES",
    "PassReport",
    "cse",
    "dce",
    "fold",
    "fuse",
    "hoist",
    "manager",
    "memory",
    "run_pipeline",
    "simplify",
]
