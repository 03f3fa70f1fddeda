"""Keep the calling thread's signal stack across an OpenVINO CPU compile (a use-after-free in OpenVINO).

OpenVINO's CPU plugin (``ov::intel_cpu::SigAltStackSetup``, 2025-2026 releases; 2026.4.1 here) gives
every compiled model its own alternate signal stack, installed on the thread that compiles it, and
on freeing the model unmaps that stack, restoring the one it replaced only if its own is still the
thread's current one. Freed in any order but the reverse of compilation (two backends, the first
opened closed first), the thread is left with a signal stack in unmapped memory. Python installs its
signal handlers with ``SA_ONSTACK``, so the next handled signal (SIGTERM, Ctrl-C) then runs on it and
the process dies of a segmentation fault that not even faulthandler can report (its own handler
needs the same stack). Measured: compile two models, free the first, then the second, then a handled
SIGTERM: exit 139; freed in reverse: exit 0.

The plugin object holds one too, installed on the thread that first loads the plugin (``Core``'s
``available_devices`` does) and unmapped when the last model of that ``Core`` goes. So the whole of
opening a model (the ``Core``, the device query, reading, compiling) runs inside
:func:`keeping_signal_stack`: afterwards the thread gets back the
stack it had before (or, where that was smaller than OpenVINO's, one as large that the kit owns for
the process's life), so a model's stack is never the current one and freeing it in any order
unmaps memory nothing points at. A larger stack is kept because OpenVINO installs its own to fit the
signal frames of AMX-using threads (``AT_MINSIGSTKSZ`` + ``SIGSTKSZ``). Linux only; elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SS_ONSTACK = 1  # <signal.h>: the thread is running on its alternate stack now (it cannot be changed then)
SS_DISABLE = 2  # <signal.h>: no alternate stack


class StackT(ctypes.Structure):
    """Linux's ``stack_t`` (glibc and musl): pointer, flags, size."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


#: Stacks the kit installed, by thread, kept for the process's life: a thread's current signal stack
#: must outlive every signal that thread may handle.
_owned: dict[int, mmap.mmap] = {}
_lock = threading.Lock()


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.sigaltstack  # noqa: B018 - present in every Linux libc; a missing one means no guard
    except (OSError, AttributeError):
        return None
    return libc


def current_signal_stack() -> StackT | None:
    """The calling thread's alternate signal stack (``sigaltstack``), or None off Linux or on failure."""
    libc = _libc()
    if libc is None:
        return None
    now = StackT()
    if libc.sigaltstack(None, ctypes.byref(now)) != 0:
        return None
    return now


def _install(libc: ctypes.CDLL, stack: StackT) -> None:
    libc.sigaltstack(ctypes.byref(stack), None)


def _owned_stack(size: int) -> StackT:
    """A stack of at least ``size`` bytes the kit owns for the calling thread (reused, grown when needed)."""
    ident = threading.get_ident()
    with _lock:
        buf = _owned.get(ident)
        if buf is None or len(buf) < size:
            buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            _owned[ident] = buf  # the one it replaces is no longer any thread's stack once this is installed
    return StackT(ctypes.addressof(ctypes.c_char.from_buffer(buf)), 0, len(buf))


def restore_signal_stack(before: StackT | None) -> None:
    """After a compile: make the thread's stack ``before`` again, or one of the kit's if ``before`` is too small."""
    libc = _libc()
    after = current_signal_stack()
    if libc is None or before is None or after is None:
        return
    if after.ss_sp == before.ss_sp and after.ss_flags == before.ss_flags:
        return  # nothing was installed
    if after.ss_flags & SS_ONSTACK:
        return  # a handler is running on it: the kernel refuses a change (cannot happen between two calls)
    if before.ss_flags & SS_DISABLE or before.ss_size >= after.ss_size:
        _install(libc, before)  # signals ran on the thread's own stack, or on one large enough: so again
    else:
        _install(libc, _owned_stack(after.ss_size))


@contextmanager
def keeping_signal_stack() -> Iterator[None]:
    """Whatever OpenVINO does inside (loading the CPU plugin, compiling), the calling thread leaves with a
    signal stack that outlives every plugin and compiled model."""
    before = current_signal_stack()
    try:
        yield
    finally:
        restore_signal_stack(before)
