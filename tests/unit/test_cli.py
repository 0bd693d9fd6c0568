import json

from shared.cli import main


def test_validate_catalog_accepts_the_default(capsys):
    assert main(["validate-catalog"]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_catalog_names_the_problem_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "catalog.json"
    data = json.loads(open("catalog/measures.json", encoding="utf-8").read())
    data["measures"][0]["sector"] = "space"
    bad.write_text(json.dumps(data))
    assert main(["validate-catalog", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown sector 'space'" in err and "Traceback" not in err


def test_missing_file_is_a_user_error(capsys):
    assert main(["submit", "/nonexistent.json"]) == 2
    assert "error:" in capsys.readouterr().err


def test_unreachable_service_is_a_user_error(monkeypatch, capsys):
    monkeypatch.setenv("LIANCHEN_RESTRICTIONS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LIANCHEN_KEY", "lc_0123.secret")
    assert main(["status", "91350100M000100Y43"]) == 2
    assert "unreachable" in capsys.readouterr().err


def test_a_missing_credential_is_a_user_error(monkeypatch, capsys):
    monkeypatch.delenv("LIANCHEN_KEY", raising=False)
    assert main(["status", "91350100M000100Y43"]) == 2
    assert "LIANCHEN_KEY" in capsys.readouterr().err
