"""catalog/personal_data.json through the one loader."""
import json

import pytest

from rules import loader
from rules.personal_data import Retention

CATALOG = loader.CATALOG_DIR


def test_the_shipped_retention_loads_and_names_its_basis():
    retention = loader.load().personal_data
    assert retention.days > 0 and retention.version
    assert "art. 19" in json.loads((CATALOG / "personal_data.json").read_text())["basis"]


def test_a_bad_retention_is_refused_naming_the_file_and_the_field(tmp_path):
    data = json.loads((CATALOG / "personal_data.json").read_text())
    data["retention_days"] = -1
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(loader.InvalidCatalogFiles) as err:
        loader.load({"PERSONAL_DATA_PATH": str(path)})
    assert any(p.startswith("personal_data.json: retention_days") for p in err.value.problems)
    assert Retention.load(CATALOG / "personal_data.json").days == 1095
