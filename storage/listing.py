"""Every study in a storage by name, direction and attrs, without reading a trial.

``optuna.get_all_study_summaries`` reads every trial of every study to count them (and to find
the best, when asked), which costs about 1.6 s per 200-trial study on SQLite: a sweep that opens
100 studies in one database spends hours listing (``docs/bench-sweep.md``). Opening, refreshing,
warm-starting, exporting and serving need only the names and attrs, which
:meth:`optuna.storages.BaseStorage.get_all_studies` returns alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from optuna.study._frozen import FrozenStudy


def all_studies(storage: str | BaseStorage) -> list[FrozenStudy]:
    """Every study of ``storage`` (name, directions, user and system attrs), trials unread."""
    from optuna.storages import get_storage  # optuna is imported when a database is read

    return get_storage(storage).get_all_studies()
