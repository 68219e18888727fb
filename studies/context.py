"""Everything one (model, symbol) study needs, built once per launch and shared by its parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from objectives.bars import Bars
from objectives.evaluator import Backend, Evaluator
from objectives.windows import Windows, WindowSpec, split

#: how trials are scored; part of a study's identity, so a study scored under other rules is
#: never resumed (its values would not be comparable with new ones)
EVALUATION = (
    "v2: common random numbers (every trial samples target i from window_seed(study seed, i)); "
    "each window computed alone (exact re-scoring); duplicates keep their recorded value"
)


def study_name(model: str, symbol: str, spec: WindowSpec, metric: str = "price_mae") -> str:
    """``{model}:{SYMBOL}:v{V}-t{T}-h{H}``, e.g. ``toto:BTCUSD:v20-t20-h1``; a study of another
    metric than price MAE adds it (``toto:BTCUSD:v20-t20-h1:return_mae``), so studies of both
    metrics live side by side."""
    name = f"{model}:{symbol}:{spec.tag}"
    return name if metric == "price_mae" else f"{name}:{metric}"


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
    windows: Windows = field(init=False)
    _search: Evaluator | None = field(default=None, init=False, repr=False)
    _test: Evaluator | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.windows = split(len(self.bars), self.spec)

    @property
    def model(self) -> str:
        return self.backend.name

    @property
    def symbol(self) -> str:
        return self.bars.symbol

    @property
    def name(self) -> str:
        return study_name(self.model, self.symbol, self.spec, self.metric)

    @property
    def fingerprint(self) -> str:
        """Hash of the rows up to the end of the test window."""
        return self.bars.fingerprint(self.windows.test_end)

    @property
    def search_evaluator(self) -> Evaluator:
        if self._search is None:
            self._search = self.backend.evaluator(self.bars.head(self.windows.validation_end))
        return self._search

    @property
    def test_evaluator(self) -> Evaluator:
        if self._test is None:
            self._test = self.backend.evaluator(self.bars.head(self.windows.test_end))
        return self._test

    def identity(self) -> dict[str, Any]:
        """The study user attrs that must match for a study to be resumed."""
        return {
            "model": self.model,
            "symbol": self.symbol,
            "data_fingerprint": self.fingerprint,
            "windows": self.spec.as_dict(),
            "checkpoint": self.backend.checkpoint_id,
            "metric": self.metric,
            "search_space": self.backend.space.describe(),
            "evaluation": EVALUATION,
        }
