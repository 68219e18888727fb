"""Everything one (model, symbol) study needs, built once per launch and shared by its parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from objectives.bars import Bars
from objectives.evaluator import Backend, Evaluator
from objectives.metrics import METRICS, Metric
from objectives.registry import find, trading_config_name
from objectives.settings import Config
from objectives.tasks import LEVELS, Task
from objectives.windows import Windows, WindowSpec, split
from storage.history import period_tag
from storage.names import named_config
from storage.record import JSONValue
from studies import attrs as keys

#: study attrs of a refreshable study: how many rows its ``data_fingerprint`` covers (so a
#: relaunch can hash the same prefix of a grown CSV), its period's tag, the period before it
DATA_ROWS_ATTR = keys.DATA_ROWS
PERIOD_ATTR = keys.PERIOD
PREVIOUS_ATTR = keys.PREVIOUS_PERIOD
#: between a study's name and its period tag: ``toto:AAPL:v20-t20-h1:trading@2013-03-01``
PERIOD_SEP = "@"

#: how trials are scored; part of a study's identity, so a study scored under other rules is
#: never resumed (its values would not be comparable with new ones)
EVALUATION = (
    "v2: common random numbers (every trial samples target i from window_seed(study seed, i)); "
    "each window computed alone (exact re-scoring); duplicates keep their recorded value"
)


def study_name(
    model: str, symbol: str, spec: WindowSpec, metric: str = "price_mae", task: Task = LEVELS
) -> str:
    """``{model}:{SYMBOL}:v{V}-t{T}-h{H}{task}``, e.g. ``toto:BTCUSD:v20-t20-h1:trading``; a
    ``levels`` study with its defaults has no task suffix (the names studies had before tasks
    existed, so they resume). A metric other than the task's default is added
    (``toto:BTCUSD:v20-t20-h1:trading:crps``), so studies of each live side by side."""
    name = f"{model}:{symbol}:{spec.tag}{task.tag()}"
    return name if metric == task.spec.metric else f"{name}:{metric}"


def legacy_identity(model: str) -> dict[str, object]:
    """Identity attrs a study made before they existed is taken to have."""
    return {"task": LEVELS.describe(model, 1)}


@dataclass
class StudyContext:
    """A symbol's data and windows bound to a loaded backend.

    The search evaluator is bound to the rows before the test window only, so no trial can read
    a test bar whatever a backend does; the test evaluator sees all rows and is used once per
    best trial by finalisation.
    """

    backend: Backend
    bars: Bars
    spec: WindowSpec
    metric: str = "price_mae"
    seed: int = 0
    #: where the checkpoint, tokenizer and data came from (recorded, not part of the identity)
    sources: dict[str, str | None] = field(default_factory=dict)
    #: validation windows per pruning step (0: no pruning, one call over the whole window)
    prune_chunk: int = 0
    #: the forecast the study scores (columns, series, path); part of its identity
    task: Task = LEVELS
    #: the period tag in the study's name; ``None`` for a symbol's first period (the name studies
    #: had before refreshes existed), set by :func:`studies.refresh.resolve_period`
    period: str | None = None
    windows: Windows = field(init=False)
    _search: Evaluator | None = field(default=None, init=False, repr=False)
    _test: Evaluator | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.windows = split(len(self.bars), self.spec)

    @property
    def model(self) -> str:
        return self.backend.name

    @property
    def deterministic(self) -> bool:
        """Whether the model's forecasts ignore the seed (its registry entry's capability):
        confirmation then takes one draw, and its spread is exactly 0."""
        found = find(self.model)
        return found is not None and found.capabilities.deterministic

    def named_config(self, config: Config) -> dict[str, JSONValue]:
        """A record's ``config``: ``config`` (the trading code's keys) with its ``name``, the
        trading code's where the model's registry entry has a rule for it."""
        return named_config(self.model, config, trading_config_name(self.model, config))

    @property
    def symbol(self) -> str:
        return self.bars.symbol

    @property
    def base_name(self) -> str:
        """The name of the symbol's first period; later periods add ``@<period>``."""
        return study_name(self.model, self.symbol, self.spec, self.metric, self.task)

    @property
    def name(self) -> str:
        base = self.base_name
        return base if self.period is None else f"{base}{PERIOD_SEP}{self.period}"

    @property
    def period_tag(self) -> str:
        """This data's period: the date of the last validation target (``2013-02-01``), the
        record's ``metadata.validation_end``; appended bars move it forward."""
        stamp = self.bars.timestamps[self.windows.validation[-1]]
        return period_tag(str(stamp.astype("datetime64[s]")))

    @property
    def objective(self) -> Metric:
        """The metric the study optimises (its direction included)."""
        return METRICS[self.metric]

    @property
    def fingerprint(self) -> str:
        """Hash of the rows up to the end of the test window."""
        return self.bars.fingerprint(self.windows.test_end)

    @property
    def search_evaluator(self) -> Evaluator:
        if self._search is None:
            self._search = self.backend.evaluator(
                self.bars.head(self.windows.validation_end), self.task, self.spec.horizon
            )
        return self._search

    @property
    def test_evaluator(self) -> Evaluator:
        if self._test is None:
            self._test = self.backend.evaluator(
                self.bars.head(self.windows.test_end), self.task, self.spec.horizon
            )
        return self._test

    def identity(self) -> dict[str, Any]:
        """The study user attrs that must match for a study to be resumed."""
        return {
            keys.MODEL: self.model,
            keys.SYMBOL: self.symbol,
            keys.DATA_FINGERPRINT: self.fingerprint,
            keys.WINDOWS: self.spec.as_dict(),
            keys.CHECKPOINT: self.backend.checkpoint_id,
            keys.METRIC: self.metric,
            keys.SEARCH_SPACE: self.backend.space.describe(),
            keys.EVALUATION: EVALUATION,
            keys.TASK: self.task.describe(self.model, self.spec.horizon),
        }
