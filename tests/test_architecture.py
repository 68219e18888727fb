"""The layout's rules, read from the source (docs/architecture.md): floors import downward only,
Optuna's private attributes are read in one module, every user error shares one base, settings
are typed below the command line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("errors", "models", "objectives", "storage", "studies", "optimise")
#: floor -> the floors of ours it may import (besides itself)
MAY_IMPORT = {
    "errors": set(),
    "models": {"errors"},
    "storage": {"errors"},
    "objectives": {"errors", "models"},
    "studies": {"errors", "objectives", "storage"},
    "optimise": {"errors", "models", "objectives", "storage", "studies"},
}
INTERNALS = re.compile(r"\._(storage|trial_id|study_id)\b")


def sources(floor: str) -> list[Path]:
    return sorted((ROOT / floor).rglob("*.py"))


def imported_floors(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & set(OURS)
    return found


@pytest.mark.parametrize("floor", OURS)
def test_each_floor_imports_only_the_floors_below_it(floor: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_floors(path) - MAY_IMPORT[floor] - {floor})
        for path in sources(floor)
    }
    assert {path: floors for path, floors in wrong.items() if floors} == {}


def test_only_one_module_reads_optunas_private_attributes() -> None:
    readers = {
        str(path.relative_to(ROOT))
        for floor in OURS
        for path in sources(floor)
        if INTERNALS.search(path.read_text())
    }
    assert readers == {"storage/optuna_internals.py"}


def test_every_error_class_of_ours_derives_from_the_one_base() -> None:
    from errors import OptimiseError

    classes = []
    for floor in OURS:
        for path in sources(floor):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                    module = module.removesuffix(".__init__")
                    classes.append(getattr(__import__(module, fromlist=[node.name]), node.name))
    assert len(classes) >= 5
    assert [c.__name__ for c in classes if not issubclass(c, OptimiseError)] == []


def test_settings_are_typed_below_the_command_line() -> None:
    """No function of objectives/ or studies/ takes or returns settings as an untyped dict."""
    untyped = re.compile(r"(config|settings|params)\w*: (dict|Mapping)\[str, Any\]")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for floor in ("objectives", "studies")
        for path in sources(floor)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if untyped.search(line)
    ]
    assert offenders == []
