"""One intra-op thread for the small matrix products whose last bits depend on the thread count.

MKL's strict reproducibility mode (``MKL_CBWR=AUTO,STRICT``, set in :mod:`models`) covers the
large products of a transformer pass, but not every small one: on a 2-core AMD EPYC (AVX2,
oneMKL 2024.0 inside torch 2.13) an ``x @ W.T`` with a narrow output and fewer rows than
columns gave different last bits with 1 and 2 threads (measured: 4-7, 12, 16 and 20 columns;
not 1-3, 8, 24 or more; for 6 columns, 2-5 rows).
That is Kronos's bar head when it decodes a window's few distinct draws, so the head runs
under :func:`one_thread` and a forecast does not depend on the process's thread count
(docs/design-notes.md, "Exact re-scoring"). Toto's mixture head (``k`` columns, one row
per step of the patch) runs under it too: the published ``k`` of 24 over 64 rows is not
affected, but a checkpoint with fewer patch steps than components would be. The Kronos
encoder's equally narrow quantiser product only feeds signs, and contexts are longer than its
width.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def intra_op_threads(count: int) -> Iterator[None]:
    """Run the block's CPU operators on ``count`` intra-op threads; restore the count after."""
    threads = torch.get_num_threads()
    if threads == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def one_thread() -> contextlib.AbstractContextManager[None]:
    """Run the block's CPU operators on one intra-op thread (see the module's docstring)."""
    return intra_op_threads(1)
