"""How long person records are kept (``catalog/personal_data.json``). Pure, framework-free.

中华人民共和国个人信息保护法 (``rules/law/personal-information-protection-law.2021.md``)
art. 19: 个人信息的保存期限应当为实现处理目的所必要的最短时间; art. 47 (二): the handler 应当主动删除
个人信息 when 保存期限已届满. The number of days is the operator's decision, not a number found in
law; the deletion job is registry's (``services/registry/persons.py``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "catalog" / "personal_data.json"


class InvalidPersonalDataRules(ValueError):
    def __init__(self, source: str, problems: list[str]):
        super().__init__(f"{source}:\n  - " + "\n  - ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Retention:
    days: int
    version: str

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH) -> "Retention":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        problems = []
        days = data.get("retention_days")
        if not isinstance(days, int) or isinstance(days, bool) or days < 0:
            problems.append("retention_days: must be a whole number of days >= 0")
        if not isinstance(data.get("version"), str) or not data.get("version"):
            problems.append("version: required")
        if not str(data.get("basis", "")).strip():
            problems.append("basis: name the law and the article relied on")
        if problems:
            raise InvalidPersonalDataRules(str(path), problems)
        return cls(days, data["version"])
