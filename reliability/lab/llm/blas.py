"""Keep numpy's BLAS on one thread inside a node process.

The node multiplies small matrices (a few hundred rows) once per engine step. OpenBLAS splits such
products over all cores by default; with several node processes on the lab's 2 shared cores the
threads fight and a 256-row step of the model took 15 times longer (15 ms instead of 1 ms, timed
in a loop over `TinyLm.next_tokens`). The environment variables only count before numpy loads
OpenBLAS, and numpy is already imported by the time a node starts, so set it through the library.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def limit_blas_threads(threads: int = 1) -> bool:
    """Set the thread count of every OpenBLAS loaded in this process; True if one was found."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    done = False
    libs = {line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower() and "/" in line}
    for lib in libs:
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(handle, name, None)
            if setter is not None:
                setter(ctypes.c_int(threads))
                done = True
                break
    return done
