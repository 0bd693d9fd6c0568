"""Who may import whom, read from the source (ast), so a new import that breaks it fails here.

- a service imports no other service: ``services.X`` only inside ``services/X``;
- ``shared``, ``contracts`` and ``rules`` import no service (``shared/contracts.py`` inspects
  the services by ``importlib`` to check the published contracts: a build tool, not an import);
- ``rules`` imports no framework and no other package of ours but itself: it is pure domain code.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("nameko", "pymongo", "bson", "pika", "kombu", "eventlet", "werkzeug", "marshmallow",
              "structlog", "requests", "prometheus_client")
PRODUCTION = ("services", "shared", "contracts", "rules", "examples")


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in a file (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.append((node.lineno, base))
            # ``from services import violations`` imports the package services.violations
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                      if base in ("services", "rules")]
    return found


def sources(top: str):
    return sorted(p for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts)


def offences() -> list[str]:
    found = []
    for top in PRODUCTION:
        for path in sources(top):
            where = path.relative_to(ROOT)
            own = where.parts[1] if top == "services" and len(where.parts) > 2 else None
            for line, module in imports(path):
                parts = module.split(".")
                if parts[0] == "services" and len(parts) > 1:
                    if top != "services":
                        found.append(f"{where}:{line} imports {module}: {top} must not import "
                                     f"a service")
                    elif parts[1] != own:
                        found.append(f"{where}:{line} imports {module}: a service imports no "
                                     f"other service (move what both need to rules/ or shared/)")
                if top == "rules":
                    if parts[0] in FRAMEWORKS:
                        found.append(f"{where}:{line} imports {module}: rules/ is framework-free")
                    elif parts[0] in ("services", "shared", "contracts", "bench", "tests"):
                        found.append(f"{where}:{line} imports {module}: rules/ imports only "
                                     f"itself and the standard library")
    return found


def test_no_service_imports_another_and_shared_and_rules_import_none():
    assert offences() == []


@pytest.mark.parametrize("text,where,problem", [
    ("from services.restrictions.gate import parse_code\n", "services/scoring/x.py",
     "a service imports no other service"),
    ("import services.violations.jurisdiction\n", "shared/x.py", "must not import a service"),
    ("from services import scoring\n", "shared/x.py", "must not import a service"),
    ("import pymongo\n", "rules/x.py", "framework-free"),
    ("from nameko.extensions import DependencyProvider\n", "rules/x.py", "framework-free"),
    ("from contracts.common import USCC\n", "rules/x.py", "imports only itself"),
    ("from services.scoring.model import ScoreModel\n", "rules/x.py", "must not import a service"),
])
def test_the_walk_catches_each_kind_of_offence(tmp_path, monkeypatch, text, where, problem):
    path = tmp_path / where
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert any(problem in offence for offence in offences()), offences()


def test_the_walk_allows_a_service_its_own_modules(tmp_path, monkeypatch):
    path = tmp_path / "services" / "scoring" / "service.py"
    path.parent.mkdir(parents=True)
    path.write_text("from services.scoring import facts\nfrom rules import loader\n"
                    "from . import scores\n", encoding="utf-8")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert offences() == []


def test_every_package_is_installed_and_copied_into_the_image():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text(encoding="utf-8")
    for package in ("services", "shared", "contracts", "rules"):
        assert f'"{package}*"' in pyproject, f"pyproject.toml does not install {package}"
        assert f"COPY {package} ./{package}" in dockerfile, f"the image lacks {package}/"
    assert "COPY catalog ./catalog" in dockerfile  # what rules/loader.py reads at start


def test_the_image_holds_the_law_texts_the_catalog_is_checked_against():
    # rules/measures.py refuses the catalog at start unless every quote is found in rules/law/.
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text(encoding="utf-8")
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert "COPY rules ./rules" in dockerfile
    assert not [p for p in ignored if p in ("rules/law", "rules/law/*", "*.md", "**/*.md", "rules")]
