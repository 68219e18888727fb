"""Forecast tasks: which forecast a study scores, spelled out, so that a winner is tuned for the
forecast its consumer makes.

* ``trading`` (the default): what the trading code (lee101/stock-prediction,
  ``backtest_test3_inline.py``) forecasts with each model. Toto is given each price column's
  percent-change series ``r[t] = (x[t] - x[t-1]) / x[t-1]`` (0 where ``x[t-1]`` is 0), the
  whole history of returns before the target from ``r[1]`` (untruncated), one step; the
  ``aggregate`` spec is applied to the return samples and the price rebuilt as
  ``last * (1 + r_hat)``. Kronos is given the wrapper's OHLCV frame (``amount = volume * close``
  when the file has none), ``lookback = max_context`` rows, and asked for a 7-step path.
  The columns are Close, High, Low and Open, one setting for all of them; the objective is
  the mean over columns of the per-column return MAE.
* ``levels``: the seed's tuning scripts' task and this project's before tasks existed: Toto on
  close levels (the context capped at ``max_context``), Kronos on upstream's frame (``amount =
  volume * mean(OHLC)``), close only, one step, price MAE. Existing studies resume under it.

Registered in :data:`TASKS`; :func:`resolve_horizon` and the command line fill a task's
defaults (columns, metric, and each model's horizon, from its registry entry,
:mod:`objectives.registry`) from what the command line left unset. What a task means for one
model (the series it reads, its context) is the model's to say (``BackendSpec.task_notes``).
"""

from __future__ import annotations

from dataclasses import dataclass

from objectives.exceptions import DataError
from objectives.registry import find
from objectives.settings import JSONValue

#: price columns in the order :class:`objectives.bars.Bars` holds them
PRICE_COLUMNS = ("open", "high", "low", "close")
PATH_SCORES = ("mean", "last")


@dataclass(frozen=True)
class TaskSpec:
    """A registered task's defaults (each model's horizon and what the task means for it are
    in the model's registry entry)."""

    name: str
    columns: tuple[str, ...]
    metric: str
    #: stored in every study's identity and record: kept as written when the tasks were made
    description: str


TASKS: dict[str, TaskSpec] = {
    "trading": TaskSpec(
        name="trading",
        columns=("close", "high", "low", "open"),
        metric="return_mae",
        description=(
            "the trading code's forecasts: Toto on each column's percent changes (the whole "
            "history before the target, from r[1]), aggregate applied to return samples, price "
            "last * (1 + r_hat); Kronos on the wrapper's frame (amount = volume * close), "
            "lookback = max_context, a path of pred_len steps"
        ),
    ),
    "levels": TaskSpec(
        name="levels",
        columns=("close",),
        metric="price_mae",
        description=(
            "close levels, one step (the seed's tuning scripts): Toto on raw closes capped at "
            "max_context, Kronos on upstream's frame"
        ),
    ),
}
DEFAULT_TASK = "trading"


@dataclass(frozen=True)
class Task:
    """The forecast a study scores: the task's rules, the columns, the path's scoring."""

    name: str
    columns: tuple[str, ...]
    path_score: str = "mean"  # the objective over a path: its mean, or its last step

    def __post_init__(self) -> None:
        if self.name not in TASKS:
            raise DataError(f"unknown task {self.name!r}; choose from {', '.join(TASKS)}")
        if not self.columns:
            raise DataError("--columns needs at least one of open, high, low, close")
        for column in self.columns:
            if column not in PRICE_COLUMNS:
                raise DataError(
                    f"unknown column {column!r} in --columns; choose from "
                    f"{', '.join(PRICE_COLUMNS)}"
                )
        if len(set(self.columns)) != len(self.columns):
            raise DataError(f"--columns names a column twice: {','.join(self.columns)}")
        if self.path_score not in PATH_SCORES:
            raise DataError(f"--path-score must be one of {', '.join(PATH_SCORES)}")

    @property
    def spec(self) -> TaskSpec:
        return TASKS[self.name]

    @property
    def column_indices(self) -> list[int]:
        """Each column's index in ``Bars.prices`` (open, high, low, close)."""
        return [PRICE_COLUMNS.index(c) for c in self.columns]

    @property
    def is_default_shape(self) -> bool:
        return self.columns == self.spec.columns and self.path_score == "mean"

    def tag(self) -> str:
        """The study-name suffix: empty for ``levels`` with its defaults (the names studies had
        before tasks existed), else ``:trading`` plus any non-default columns or path score."""
        parts = [] if self.name == "levels" else [self.name]
        if self.columns != self.spec.columns:
            parts.append("cols-" + "-".join(self.columns))
        if self.path_score != "mean":
            parts.append(f"path-{self.path_score}")
        return "".join(f":{p}" for p in parts)

    def describe(self, model: str, horizon: int) -> dict[str, JSONValue]:
        """Every choice the task implies for ``model``, for the study's identity and the record."""
        spec = self.spec
        out: dict[str, JSONValue] = {
            "name": self.name,
            "columns": list(self.columns),
            "horizon": horizon,
            "path_score": self.path_score,
            "objective_over": "mean over columns of the per-column metric, over the path's "
            + ("steps (mean)" if self.path_score == "mean" else "last step"),
            "description": spec.description,
        }
        model_spec = find(model)
        if model_spec is not None:
            out.update(model_spec.task_notes(self.name))
        return out


def resolve_horizon(task: Task, model: str, horizon: int | None) -> int:
    """``--horizon`` if given, else the task's default for ``model`` (its registry entry's)."""
    if horizon is not None:
        return int(horizon)
    model_spec = find(model)
    return 1 if model_spec is None else model_spec.default_horizon(task.name)


def parse_columns(text: str | None, task_name: str) -> tuple[str, ...]:
    """``--columns close,high`` (case-insensitive) or the task's default."""
    if text is None:
        return TASKS[task_name].columns if task_name in TASKS else ("close",)
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


LEVELS = Task("levels", TASKS["levels"].columns)
TRADING = Task("trading", TASKS["trading"].columns)
