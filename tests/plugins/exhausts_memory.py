"""A deliberately broken plug-in: on the gpt-j-6b spec it allocates until memory runs out.

To stay safe on any machine it first caps its own address space (RLIMIT_AS) at 256 MiB above
what the process uses, so "out of memory" arrives as MemoryError long before the machine's
memory is touched; the cap is lifted again when the MemoryError leaves.
"""

import resource

import numpy as np

from rope_suite.conformance import reference

framework = "numpy"
HEADROOM = 256 << 20


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def rope(x, positions, spec):
    if spec.head_dim == 256 and spec.rotary_dim == 64:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (_address_space() + HEADROOM, hard))
        try:
            hoard = []
            while True:
                hoard.append(np.ones(8 << 20))  # 64 MiB at a time
        finally:
            hoard = None
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    return reference.apply(np.asarray(x, np.float64), np.asarray(positions), spec).astype(x.dtype)
