"""The few GRAPHC_* environment flags, defined and documented in one place.

Part of the IR core. Read at call time, so tests may set them per test.

GRAPHC_VERIFY=1         run the IR verifier after every optimization pass
GRAPHC_DUMP=fold,fuse   print the IR after the named passes (to stderr)
"""

from __future__ import annotations

import os


def verify_passes() -> bool:
    return os.environ.get("GRAPHC_VERIFY", "") not in ("", "0")


def dump_after() -> frozenset[str]:
    return frozenset(n.strip() for n in os.environ.get("GRAPHC_DUMP", "").split(",") if n.strip())
