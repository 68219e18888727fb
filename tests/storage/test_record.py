"""The store record: a real export round-trips byte for byte, its keys are the documented schema
(docs/store-schema.md, itself checked against the dataclass), and malformed files give one line
naming the file and the key."""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from storage.exceptions import StorageError
from storage.record import Record
from storage.store import read_record, record_path
from tests.conftest import REPO, launch_fake

SCHEMA_DOC = REPO / "docs" / "store-schema.md"
#: keys only ``best/`` records carry
BEST_ONLY = (
    "best_selection", "config_path", "selection_metric", "selection_value",
    "candidate_pct_return_mae", "improvement_pct", "<model>_pct_return_mae",
)  # fmt: skip
#: keys an export of this version writes only when they apply: horizon > 1 (``per_step``),
#: impossible forecasts (``warnings``), a re-export after more trials (``updated_at``)
SOMETIMES = ("per_step", "warnings", "updated_at")
#: a blocked validation protocol's windows and ``--select``'s choice (not in a default export)
SOMETIMES += ("kind", "val_blocks", "val_step", "blocks", "rule", "chosen", "reason", "p_value")
Schema = dict[str, tuple[str, str]]  # key path -> (type, "required" | "optional")


def documented() -> Schema:
    """Every key path in the tables of docs/store-schema.md."""
    schema: Schema = {}
    for line in SCHEMA_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[2] not in ("required", "optional"):
            continue
        for path in re.findall(r"`([^`]+)`", cells[0]):
            assert path not in schema, f"{path} documented twice"
            schema[path] = (cells[1], cells[2])
    return schema


def _doc_type(hint: object, optional: bool) -> tuple[str, type | None]:
    """The documented type of a field's type hint, and the dataclass it nests, if any."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        assert len(args) == 1
        kind, nested = _doc_type(args[0], False)
        return (kind if optional else f"{kind} or null"), nested
    if dataclasses.is_dataclass(hint):
        return "object", hint  # type: ignore[return-value]
    origin = typing.get_origin(hint)
    if origin in (Mapping, dict):
        return "object", None
    if origin is tuple:
        kind, nested = _doc_type(typing.get_args(hint)[0], False)
        return f"array of {kind}", nested
    return {str: "string", int: "integer", float: "number", bool: "boolean"}[hint], None  # type: ignore[index]


def declared(cls: type = Record, prefix: str = "") -> Schema:
    """Every key path of the dataclasses, with its type and whether it is required."""
    schema: Schema = {}
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        path = prefix + spec.name
        optional = spec.default is None
        if "flattened" in spec.metadata:  # one key per model: ``<model><suffix>``, a number
            schema[f"{prefix}<model>{spec.metadata['flattened']}"] = ("number", "optional")
            continue
        kind, nested = _doc_type(hints[spec.name], optional)
        schema[path] = (kind, "optional" if optional else "required")
        if nested is not None:
            schema.update(declared(nested, path + ("[]." if kind.startswith("array") else ".")))
    return schema


def _matches(value: object, kind: str) -> bool:
    if kind.endswith(" or null"):
        return value is None or _matches(value, kind.removesuffix(" or null"))
    if kind.startswith("array of "):
        return isinstance(value, list) and all(_matches(v, kind[9:]) for v in value)
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    expected = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
                "object": dict}[kind]  # fmt: skip
    return isinstance(value, expected)


def check_keys(obj: dict, schema: Schema, prefix: str = "", *, every: bool) -> Iterator[str]:
    """Problems of a file's object at ``prefix``: undocumented keys, missing required ones (any
    documented one when ``every``, except ``best_selection`` and the horizon > 1 ``per_step``),
    values of the wrong type."""
    children = {
        p[len(prefix) :]: spec
        for p, spec in schema.items()
        if p.startswith(prefix) and re.fullmatch(r"[a-z_<>]+", p[len(prefix) :])
    }
    patterns = {
        re.compile(key.replace("<model>", "[a-z0-9]+")): key for key in children if "<" in key
    }
    for key, (_, required) in children.items():
        wanted = required == "required" or (every and key not in BEST_ONLY + SOMETIMES)
        if wanted and key not in obj:
            yield f"missing {prefix}{key}"
    for key, value in obj.items():
        path = prefix + key
        if key not in children:
            key = next((p for r, p in patterns.items() if r.fullmatch(key)), key)
        if key not in children:
            yield f"undocumented {path}"
            continue
        kind = children[key][0]
        if not _matches(value, kind):
            yield f"{path} is not {kind}"
        elif isinstance(value, dict) and any(p.startswith(path + ".") for p in schema):
            yield from check_keys(value, schema, path + ".", every=every)
        elif isinstance(value, list) and any(p.startswith(path + "[].") for p in schema):
            for item in value:
                yield from check_keys(item, schema, path + "[].", every=every)


def minimal() -> dict:
    """A record as older versions wrote it: the trading code's keys and little provenance."""
    return {
        "symbol": "AAPL",
        "model": "toto",
        "config": {"name": "toto_optuna_trial3", "num_samples": 256, "aggregate": "mean"},
        "validation": {"price_mae": 1.5, "return_mae": 0.02, "latency_s": 0.01},
        "test": {"price_mae": 1.25, "return_mae": 0.015, "latency_s": 0.01},
        "windows": {"val_window": 20, "test_window": 20, "forecast_horizon": 1},
        "metadata": {"study_name": "toto:AAPL:v20-t20-h1", "trial_number": 3,
                     "created_at": "2026-11-27T03:00:00+00:00"},
    }  # fmt: skip


def one_line(exc: pytest.ExceptionInfo[StorageError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# --- the schema ---------------------------------------------------------------------------------


def test_the_documented_schema_is_the_dataclass() -> None:
    assert documented() == declared()


def test_a_real_export_round_trips_and_has_exactly_the_documented_keys(
    workdir: Path, sample_data: Path
) -> None:
    assert launch_fake(sample_data, 4) == 0
    schema = documented()
    records = {}
    for model, every in (("fake", True), ("best", False)):
        data = record_path(workdir / "store", model, "AAPL").read_bytes()
        record = records[model] = Record.from_json(data)
        assert Record.from_json(record.to_json()) == record
        assert (json.dumps(record.to_json(), indent=2) + "\n").encode() == data  # byte for byte
        assert list(check_keys(json.loads(data), schema, every=every)) == [], model
    chosen = records["best"]
    assert chosen.metadata.best_selection is not None
    assert chosen.config_path == "store/fake/AAPL.json"  # the store as given, as trading writes
    assert chosen.metadata.selection_metric == "validation_pct_return_mae"  # trading: return_mae
    assert chosen.metadata.selection_value == chosen.validation.return_mae
    assert chosen.metadata.candidate_pct_return_mae == {"fake": chosen.validation.return_mae}
    assert chosen.metadata.improvement_pct == 0.0  # one model compared, as the trading code
    only_best = {"best_selection", "selection_metric", "selection_value",
                 "candidate_pct_return_mae", "improvement_pct"}  # fmt: skip
    meta = dataclasses.replace(chosen.metadata, **dict.fromkeys(only_best))
    assert dataclasses.replace(chosen, config_path=None, metadata=meta) == records["fake"]


def test_a_record_of_an_older_version_keeps_its_keys_and_their_order() -> None:
    raw = minimal()
    record = Record.from_json(json.dumps(raw))
    assert json.dumps(record.to_json()) == json.dumps(raw)
    assert record.objective == "price_mae"  # before the objective was stored
    assert record.settings == {"num_samples": 256, "aggregate": "mean"}
    assert Record.from_json(record.to_json()) == record
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.model = "kronos"  # type: ignore[misc]


# --- malformed records --------------------------------------------------------------------------


def _without(raw: dict, path: str) -> dict:
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    del node[last]
    return raw


def _with(raw: dict, path: str, value: object) -> dict:
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    node[last] = value
    return raw


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"symbol": "AAPL", ', "f.json: not valid JSON (Expecting property name"),
        (b"\xff\xfe{", "f.json: not valid JSON ("),
        (b"[1, 2]", "f.json: the record is an array, not an object"),
        (_without(minimal(), "test"), "f.json: missing key test"),
        (_without(minimal(), "validation.latency_s"), "f.json: missing key validation.latency_s"),
        (_without(minimal(), "config.name"), "f.json: missing key config.name"),
        (_with(minimal(), "metadata.trial_number", "3"),
         "f.json: metadata.trial_number is a string, not an integer"),
        (_with(minimal(), "validation.price_mae", True),
         "f.json: validation.price_mae is a boolean, not a number"),
        (_with(minimal(), "windows", [20, 20, 1]), "f.json: windows is an array, not an object"),
        (_with(minimal(), "metadata.selection", {"method": 1}),
         "f.json: metadata.selection.method is a number, not a string"),
        (_with(minimal(), "test.sharpe", 1.0), "f.json: unknown key test.sharpe"),
    ],
)  # fmt: skip
def test_a_malformed_record_is_one_line_naming_the_file_and_key(
    data: bytes | dict, expected: str
) -> None:
    with pytest.raises(StorageError) as exc:
        Record.from_json(data, "f.json")
    assert one_line(exc).startswith(expected)


def test_reading_a_malformed_file_names_its_path(tmp_path: Path) -> None:
    path = record_path(tmp_path, "toto", "AAPL")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_with(minimal(), "validation.price_mae", "1.5")))
    with pytest.raises(StorageError) as exc:
        read_record(tmp_path, "toto", "AAPL")
    assert one_line(exc) == (
        f"{path}: validation.price_mae is a string, not a number; re-run export"
    )
