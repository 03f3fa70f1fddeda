"""Peak resident memory of this process, for the per-row RSS column.

On Linux the kernel's `ru_maxrss` survives `exec`, so a row process would report its parent's peak;
`VmHWM` in /proc/self/status belongs to the process's own address space and starts afresh.
"""

from __future__ import annotations

import sys


def peak_rss_mb() -> float | None:
    """Peak RSS in MiB of this process's own address space, or None where the platform does not say."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)
