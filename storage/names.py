"""Names in the store: ``config.name`` in the trading code's style, and study file names.

``config.name`` follows the names the trading code's Optuna sweep gave its winners
(``test_hyperparameters_extended.py`` at lee101/stock-prediction 3d98a753, the names in its
``hyperparams/`` records): ``toto_opt_<aggregate>_<num_samples>_spb<samples_per_batch>`` and
``kronos_opt_temp<T:.3f>_p<top_p:.2f>_s<sample_count>_k<top_k>_clip<clip:.2f>_ctx<max_context>``.
Another model (or a config without those keys) gets ``<model>_opt_`` and its settings as
``<key><value>`` joined by ``_``. The winning trial is in ``metadata.trial_number``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from storage.record import JSONValue

TOTO_KEYS = ("aggregate", "num_samples", "samples_per_batch")
KRONOS_KEYS = ("temperature", "top_p", "sample_count", "top_k", "clip", "max_context")
#: the longest study file stem; a longer name is cut and given a hash of the whole name
MAX_STEM = 160
_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")


def config_name(model: str, settings: Mapping[str, JSONValue]) -> str:
    """The trading code's name for ``settings`` (a config without its ``name``)."""
    if model == "toto" and all(k in settings for k in TOTO_KEYS):
        name = (
            f"toto_opt_{settings['aggregate']}_{settings['num_samples']}"
            f"_spb{settings['samples_per_batch']}"
        )
        extra = {k: v for k, v in settings.items() if k not in TOTO_KEYS}
        return name + "".join(f"_{_short(k)}{_text(v)}" for k, v in extra.items())
    if model == "kronos" and all(_is_number(settings.get(k)) for k in KRONOS_KEYS):
        s = {k: _number(settings[k]) for k in KRONOS_KEYS}
        return (
            f"kronos_opt_temp{s['temperature']:.3f}_p{s['top_p']:.2f}_s{int(s['sample_count'])}"
            f"_k{int(s['top_k'])}_clip{s['clip']:.2f}_ctx{int(s['max_context'])}"
        )
    if model == "chronos2" and _is_number(settings.get("context_length")):
        mode = "multi" if settings.get("use_multivariate") else "uni"
        return f"chronos2_opt_ctx{settings['context_length']}_{settings.get('aggregation')}_{mode}"
    return f"{model}_opt" + "".join(f"_{k}{_text(v)}" for k, v in settings.items())


def named_config(model: str, settings: Mapping[str, JSONValue]) -> dict[str, JSONValue]:
    """``{"name": config_name(...), **settings}``: a record's ``config``."""
    return {"name": config_name(model, settings), **settings}


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


def _short(key: str) -> str:
    return {"max_context": "ctx"}.get(key, key)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: JSONValue) -> float:
    assert isinstance(value, (int, float))
    return float(value)


def _text(value: JSONValue) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
