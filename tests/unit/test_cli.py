import json

import pytest

from shared.cli import PORTS, main


def test_validate_catalog_accepts_the_default(capsys):
    assert main(["validate-catalog"]) == 0
    out = capsys.readouterr().out
    assert "valid" in out
    assert "2026-12-01.1   from 2026-12-01T00:00:00+08:00  法制审核 PENDING" in out


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


def test_validate_score_model_accepts_the_default(capsys):
    assert main(["validate-score-model"]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "class D" in out  # a serious listed record ends in class D


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("thresholds"), "missing entry 'thresholds'"),
    (lambda m: m.update(thresholds=[{"class": "A", "min": 90}]), "thresholds"),
    (lambda m: m.update(severity_deduction={"minor": 2}), "invalid score model"),
])
def test_validate_score_model_names_the_problem_without_a_traceback(tmp_path, capsys, change,
                                                                    message):
    model = json.loads(open("catalog/score_model.json", encoding="utf-8").read())
    change(model)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model))
    assert main(["validate-score-model", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_validate_score_model_refuses_a_file_that_is_not_json(tmp_path, capsys):
    path = tmp_path / "model.json"
    path.write_text("{not json")
    assert main(["validate-score-model", str(path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_changes_without_a_system_is_a_user_error(monkeypatch, capsys):
    monkeypatch.setenv("LIANCHEN_RESTRICTIONS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LIANCHEN_KEY", "lc_0123.secret")
    assert main(["changes"]) == 2
    assert "unreachable" in capsys.readouterr().err
    assert main(["changes", "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err


def test_health_reports_each_part_down_and_exits_non_zero(monkeypatch, capsys):
    for service in PORTS:
        monkeypatch.setenv(f"LIANCHEN_{service.upper()}_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300")
    monkeypatch.setenv("RABBIT_MGMT_URL", "http://guest:guest@127.0.0.1:9")
    assert main(["health"]) == 1
    captured = capsys.readouterr()
    lines = {line.split()[0]: line for line in captured.out.splitlines()[1:] if line.strip()}
    assert set(PORTS) | {"store", "broker"} <= set(lines)
    assert all("down" in lines[name] for name in set(PORTS) | {"store", "broker"})
    assert "Traceback" not in captured.err


def test_contracts_check_passes_and_writing_reproduces_the_checked_in_files(tmp_path, capsys):
    assert main(["contracts", "--check"]) == 0
    assert main(["contracts", "--check", "--out", str(tmp_path)]) == 1  # nothing there yet
    assert "stale" in capsys.readouterr().err
    assert main(["contracts", "--out", str(tmp_path)]) == 0
    for name in ("openapi.json", "asyncapi.json"):
        assert (tmp_path / name).read_text() == open(f"docs/api/{name}").read()


def test_every_command_is_listed_in_the_readme():
    parser_commands = set(_commands())
    readme = open("README.md", encoding="utf-8").read()
    section = readme.split("## Command-line tool", 1)[1].split("\n## ", 1)[0]
    assert parser_commands == {"submit", "import", "status", "changes", "dead-letters",
                               "validate-catalog", "validate-score-model", "keys", "health",
                               "contracts", "audit", "notices", "pii", "catalog"}
    for command in parser_commands:
        assert f"lianchen {command}" in section, command


def _commands():
    import argparse
    from shared.cli import build_parser
    return next(a for a in build_parser()._actions
                if isinstance(a, argparse._SubParsersAction)).choices


def _walk(parser, path=()):
    """Every (command path, action) of the parser and its subparsers."""
    import argparse
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _walk(child, path + (name,))
        else:
            yield path, action


def test_every_argument_of_every_command_has_help():
    from shared.cli import build_parser
    missing = [(" ".join(path), action.dest) for path, action in _walk(build_parser())
               if not action.help or action.help == "==SUPPRESS=="]
    assert missing == []


def test_version_is_printed_and_exits_zero(capsys):
    from importlib.metadata import version
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lianchen {version('lianchen')}"


def test_help_names_the_environment_variables(capsys):
    assert main(["status", "--help"]) == 0
    out = capsys.readouterr().out
    for variable in ("LIANCHEN_KEY", "LIANCHEN_<SERVICE>_URL", "AMQP_URI", "MONGO_URI"):
        assert variable in out


def test_sectors_and_roles_are_choices(capsys):
    from rules.vocabulary import SECTORS
    from shared.auth import ROLES
    assert main(["status", "91350100M000100Y43", "--sector", "space"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'space'" in err and SECTORS[0] in err
    assert main(["keys", "create", "emperor", "x"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'emperor'" in err and all(role in err for role in ROLES)


def test_a_uscc_on_the_command_line_may_carry_spaces_and_hyphens(monkeypatch, capsys):
    from shared.cli import build_parser
    args = build_parser().parse_args(["status", "9135 0100-M000100Y43"])
    assert args.uscc == "91350100M000100Y43"
    assert main(["status", "91350100M000100Y44"]) == 2
    assert "not a USCC: wrong check character" in capsys.readouterr().err
