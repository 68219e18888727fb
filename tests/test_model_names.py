"""A model is two folders and one registry line (docs/architecture.md, "Adding a model"): no
module outside ``models/<name>/``, ``objectives/<name>/`` and the registry's list names a model.

Read from the source, like ``tests/test_architecture.py``:

* in code, no string (docstrings aside) and no identifier names a registered model: what differs
  between models is asked of its ``BackendSpec`` (``objectives/registry.py``). Two strings are
  exempt: the tasks' descriptions, written when the tasks were made and stored in every study's
  identity and record (changing them would orphan every study), and the project's name;
* a model added after the first two is not mentioned at all, comments and docstrings included.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from objectives.registry import BACKENDS, spec
from objectives.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ("errors", "models", "objectives", "optimise", "storage", "studies")
REGISTRY = ROOT / "objectives" / "registry.py"
#: the project's name (its cache folder's): not a model's
PROJECT = "kronos-toto-optimise"
#: the models the project began with: docstrings and comments may tell their history
FIRST = ("kronos", "toto")
#: the registered models (the test double ``fake`` that tests register is no model of ours)
MODELS = tuple(name for name in BACKENDS if name != "fake")


def outside_the_models() -> list[Path]:
    """Every module of the package folders but the models' own folders and the registry."""
    own = {ROOT / floor / name for floor in ("models", "objectives") for name in MODELS}
    return [
        path
        for floor in FLOORS
        for path in sorted((ROOT / floor).rglob("*.py"))
        if path != REGISTRY and not any(folder in path.parents for folder in own)
    ]


def names_a_model(text: str) -> list[str]:
    """The registered models ``text`` names (case-insensitive, as a word or an identifier's
    part: ``Toto``, ``"kronos"``, ``toto_series``, ``KRONOS_KEYS``)."""
    text = text.lower().replace(PROJECT, "")
    return [m for m in MODELS if re.search(rf"(?<![a-z0-9]){re.escape(m)}(?![a-z0-9])", text)]


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def code_mentions(path: Path) -> list[str]:
    """``line: model: text`` for each string (not a docstring) or identifier naming a model."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = _docstrings(tree)
    frozen = {spec.description for spec in TASKS.values()}
    found = []
    for node in ast.walk(tree):
        texts: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and node.value not in frozen:
                texts.append(node.value)
        for attr in ("id", "attr", "name", "arg", "asname", "module"):
            value = getattr(node, attr, None)
            if isinstance(value, str):
                texts.append(value)
        for text in texts:
            line = getattr(node, "lineno", 0)
            found += [f"{line}: {m}: {text[:60]!r}" for m in names_a_model(text)]
    return found


def test_the_scan_sees_what_it_looks_for() -> None:
    """The checks below are not vacuous: the helpers find each form of a model's name."""
    assert set(MODELS) >= {"kronos", "toto", "chronos2"}
    assert names_a_model('if model == "toto":') == ["toto"]
    assert names_a_model("KRONOS_KEYS") == ["kronos"] and names_a_model("Chronos2Space") == []
    assert names_a_model("chronos2_opt_ctx") == ["chronos2"]
    assert names_a_model("~/.cache/kronos-toto-optimise") == []
    example = ROOT / "objectives" / "toto" / "spec.py"
    assert code_mentions(example) != [] and example not in outside_the_models()
    scanned = outside_the_models()
    assert REGISTRY not in scanned and ROOT / "storage" / "names.py" in scanned


@pytest.mark.parametrize("floor", FLOORS)
def test_no_code_outside_a_models_folders_names_a_model(floor: str) -> None:
    found = {
        str(path.relative_to(ROOT)): code_mentions(path)
        for path in outside_the_models()
        if path.relative_to(ROOT).parts[0] == floor
    }
    assert {path: lines for path, lines in found.items() if lines} == {}


def test_a_model_added_since_the_first_two_is_not_mentioned_outside_its_folders() -> None:
    """By name or title (``chronos2``, ``Chronos-2``), anywhere: code, comments, docstrings."""
    later = [m for m in MODELS if m not in FIRST]
    assert later, "no model was added since the first two"
    words = {w for m in later for w in (m, spec(m).title.lower())}
    found = {
        f"{path.relative_to(ROOT)}:{number}": line.strip()
        for path in outside_the_models()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if any(word in line.lower() for word in words)
    }
    assert found == {}


def test_the_registry_lists_each_model_once_by_its_folder() -> None:
    """The one line per model: its name and the spec module in its own folder."""
    assert {name: BACKENDS[name] for name in MODELS} == {
        name: f"objectives.{name}.spec" for name in MODELS
    }
    for name in MODELS:
        assert (ROOT / "objectives" / name / "spec.py").is_file()
        assert (ROOT / "models" / name / "__init__.py").is_file()
