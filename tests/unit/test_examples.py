"""The sample input files the README points to are valid input, as a client would send them."""
import json
from pathlib import Path

import pytest
from marshmallow import ValidationError

from contracts.violation import ViolationSchema
from shared.importer import CSV_COLUMNS, read_records

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_record_example_is_a_valid_violation():
    record = json.loads((EXAMPLES / "record.json").read_text(encoding="utf-8"))
    loaded = ViolationSchema().load(record)
    assert loaded["uscc"] == record["uscc"]


def test_history_example_has_every_column_and_only_valid_records():
    path = EXAMPLES / "history.csv"
    header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert tuple(header) == CSV_COLUMNS
    rows = list(read_records(path))
    assert len(rows) == 3
    for line, record in rows:
        ViolationSchema().load(record)  # raises, naming the field, if an example is wrong
    assert rows[2][1]["listing"]["list"] == "serious_violation"


def test_a_broken_copy_of_the_example_is_refused_naming_the_field():
    record = json.loads((EXAMPLES / "record.json").read_text(encoding="utf-8"))
    record["uscc"] = record["uscc"][:-1] + ("0" if record["uscc"][-1] != "0" else "1")
    with pytest.raises(ValidationError) as error:
        ViolationSchema().load(record)
    assert "uscc" in error.value.messages


def test_the_readme_uses_the_examples():
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    assert "examples/record.json" in readme and "examples/history.csv" in readme
