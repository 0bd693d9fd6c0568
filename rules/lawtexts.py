"""The law texts under ``rules/law/``: find an article and check that a quote stands in it.

Each file holds one rule in one version: a front matter block (``key: value`` lines between
``---`` markers), then the text verbatim from its source (``rules/law/INDEX.md``). An article
runs from its heading (``第X条`` opening a line, or ``（X）`` for a policy document whose front
matter says ``numbering: paragraphs``) to the next heading. The catalog's measures cite
``law_file`` and ``article``; ``rules.measures`` refuses a basis whose quote is not found here.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

LAW_DIR = Path(__file__).resolve().parent / "law"
ARTICLE = re.compile(r"^(第[零一二三四五六七八九十百]+条)[ \u3000]", re.M)
PARAGRAPH = re.compile(r"^(（[一二三四五六七八九十]+）)", re.M)
NOTES = {"INDEX.md", "UNVERIFIED.md", "FINDINGS.md"}


class LawTextError(LookupError):
    pass


@lru_cache(maxsize=64)
def _read(name: str, law_dir: str) -> tuple[dict, str]:
    path = Path(law_dir) / name
    if "/" in name or "\\" in name or name in NOTES or not name.endswith(".md"):
        raise LawTextError(f"{name!r} is not a law file of rules/law/")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LawTextError(f"no law file {name!r} in rules/law/") from exc
    return split_front_matter(text, name)


class MalformedLawFile(LawTextError, ValueError):
    """A law file whose front matter cannot be read."""


def split_front_matter(text: str, name: str) -> tuple[dict, str]:
    """(front matter, body) of one law file's text; ``MalformedLawFile`` naming the file."""
    if not text.startswith("---\n"):
        raise MalformedLawFile(f"{name}: no front matter (must start with ---)")
    block, sep, body = text[4:].partition("\n---\n")
    if not sep:
        raise MalformedLawFile(f"{name}: front matter not closed by ---")
    meta = {}
    for line in block.splitlines():
        key, colon, value = line.partition(":")
        if not colon:
            raise MalformedLawFile(f"{name}: front matter line without key: {line!r}")
        meta[key.strip()] = value.strip()
    return meta, body


def front_matter(name: str, law_dir: Path = LAW_DIR) -> dict:
    return dict(_read(name, str(law_dir))[0])


def article_text(name: str, heading: str, law_dir: Path = LAW_DIR) -> str:
    """The text of article ``heading`` (e.g. ``第十五条``) of law file ``name``."""
    meta, body = _read(name, str(law_dir))
    pattern = PARAGRAPH if meta.get("numbering") == "paragraphs" else ARTICLE
    found = [m for m in pattern.finditer(body) if m.group(1) == heading]
    if not found:
        raise LawTextError(f"{name}: no article {heading}")
    start = found[0].start()
    following = pattern.search(body, found[0].end())
    return body[start:following.start() if following else len(body)].strip()


def quote_problem(name: str, heading: str, quote: str, law_dir: Path = LAW_DIR) -> str | None:
    """None when ``quote`` stands verbatim in article ``heading`` of ``name``; else why not."""
    if not str(quote or "").strip():
        return "no quote"
    try:
        text = article_text(name, heading, law_dir)
    except LawTextError as exc:
        return str(exc)
    if quote not in text:
        return f"quote {quote[:40]!r}… is not found verbatim in {name} {heading}"
    return None
