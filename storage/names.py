"""Names in the store: ``config.name`` in the trading code's style, and study file names.

``config.name`` follows the names the trading code's Optuna sweep gave its winners: a model
whose registry entry has such a rule (``BackendSpec.config_name``, e.g.
``objectives/toto/spec.py``) names a config in its keys, and the caller passes that name;
otherwise (another model, or a config without those keys) the name is ``<model>_opt`` and the
settings as ``_<key><value>``. The winning trial is in ``metadata.trial_number``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from storage.record import JSONValue

#: the longest study file stem; a longer name is cut and given a hash of the whole name
MAX_STEM = 160
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")


def config_name(model: str, settings: Mapping[str, JSONValue]) -> str:
    """The generic name of ``settings`` (a config without its ``name``):
    ``<model>_opt_<key><value>...``."""
    return f"{model}_opt" + "".join(f"_{k}{_text(v)}" for k, v in settings.items())


def named_config(
    model: str, settings: Mapping[str, JSONValue], name: str | None = None
) -> dict[str, JSONValue]:
    """``{"name": name, **settings}``: a record's ``config``; without ``name`` (no trading
    code's name for it) the generic :func:`config_name`."""
    return {"name": config_name(model, settings) if name is None else name, **settings}


def study_file_stem(study_name: str) -> str:
    """A file-system-safe stem for a study's own record (``<model>/studies/<stem>.json``).

    Study names are ``model:SYMBOL:v20-t20-h1:task[:metric][@period]``; every character but
    letters, digits, ``.``, ``_``, ``@`` and ``-`` (the ``:`` above) becomes ``_``, so the name
    is a valid file name on Linux, macOS and Windows and readable as the study it is. A leading
    dot (a hidden file) is replaced too; over :data:`MAX_STEM` characters the name is cut and
    ends in 12 hex digits of its SHA-256.
    """
    stem = _UNSAFE.sub("_", study_name)
    if not stem or stem.startswith("."):
        stem = "_" + stem.lstrip(".")
    if len(stem) > MAX_STEM:
        digest = hashlib.sha256(study_name.encode()).hexdigest()[:12]
        stem = f"{stem[: MAX_STEM - 13]}-{digest}"
    return stem


def _text(value: JSONValue) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
