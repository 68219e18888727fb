"""Inference-only Kronos and Toto in pure PyTorch, and their checkpoint loading.

Importing this package asks Intel MKL for strict conditional numerical reproducibility
(``MKL_CBWR=AUTO,STRICT``) unless the environment already chooses a mode: without it MKL splits
long matrix products across threads, so a forecast's last bits would depend on the thread count
and ``optimise forecast`` could not reproduce a trial exactly in another process. It must be set
before MKL's first call, so it lives here, imported before any model runs
(docs/design-notes.md, "Exact re-scoring").
"""

import os

os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
