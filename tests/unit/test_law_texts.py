"""The law texts under rules/law: front matter complete, articles where the index says.

Each file holds one rule in one version: a front matter block (``key: value`` lines between
``---`` markers) and then the text, verbatim from the source named in the front matter. The
files are read with the catalog loader's own reader (``rules.lawtexts``, plain ``key: value``
lines, no YAML library): the files are data, not code.
"""
import re
from pathlib import Path

import pytest

from rules.lawtexts import split_front_matter

LAW_DIR = Path(__file__).resolve().parents[2] / "rules" / "law"
NOTES = {"INDEX.md", "UNVERIFIED.md", "FINDINGS.md"}
REQUIRED = ("title", "document_number", "issuing_body", "adopted", "promulgated", "in_force",
            "superseded", "source_repository", "source_path", "source_commit", "retrieved",
            "completeness", "articles")
DIGITS = "零一二三四五六七八九"
# An article heading opens a line: 第X条 then a space (ASCII or U+3000). A policy document whose
# front matter says ``numbering: paragraphs`` (the Shanxi opinions) is numbered （一）…（二十）.
ARTICLE = re.compile(r"^(第[零一二三四五六七八九十百]+条)[ \u3000]", re.M)
PARAGRAPH = re.compile(r"^(（[一二三四五六七八九十]+）)", re.M)


def cn_to_int(numeral):
    """一百一十八 -> 118; 二十 -> 20; 十 -> 10; 一百零一 -> 101."""
    total, digit = 0, 0
    for ch in numeral:
        if ch == "百":
            total += (digit or 1) * 100
            digit = 0
        elif ch == "十":
            total += (digit or 1) * 10
            digit = 0
        else:
            digit = DIGITS.index(ch)
    return total + digit


def int_to_cn(n):
    if n < 10:
        return DIGITS[n]
    if n < 20:
        return "十" + (DIGITS[n - 10] if n % 10 else "")
    if n < 100:
        return DIGITS[n // 10] + "十" + (DIGITS[n % 10] if n % 10 else "")
    head, rest = DIGITS[n // 100] + "百", n % 100
    if rest == 0:
        return head
    if rest < 10:
        return head + "零" + DIGITS[rest]
    return head + ("一" + int_to_cn(rest) if rest < 20 else int_to_cn(rest))


def article(n):
    return f"第{int_to_cn(n)}条"


def parse(path):
    """(front matter dict, body) of one law file; ValueError naming the file if malformed
    (the loader's own reading, ``rules.lawtexts.split_front_matter``)."""
    return split_front_matter(path.read_text(encoding="utf-8"), path.name)


def headings(body, meta=None):
    pattern = PARAGRAPH if (meta or {}).get("numbering") == "paragraphs" else ARTICLE
    return pattern.findall(body)


def expand(spec):
    """'第一条–第三条, 第十五条' -> ['第一条', '第二条', '第三条', '第十五条']."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if "–" in part:
            lo, hi = (cn_to_int(x.strip()[1:-1]) for x in part.split("–"))
            out += [article(n) for n in range(lo, hi + 1)]
        else:
            out.append(part)
    return out


def law_files():
    return sorted(p for p in LAW_DIR.glob("*.md") if p.name not in NOTES)


def full_text_files():
    return [p for p in law_files() if parse(p)[0].get("completeness") == "full text"]


def index_rows():
    """Rows of the table in INDEX.md: document | number | file | articles | from | to."""
    rows = []
    for line in (LAW_DIR / "INDEX.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[2].endswith(".md") and not set(cells[2]) <= {"-"}:
            rows.append(dict(zip(("document", "number", "file", "articles", "from", "to"), cells)))
    return rows


@pytest.mark.parametrize("n,numeral", [(1, "一"), (10, "十"), (15, "十五"), (20, "二十"), (26, "二十六"),
                                       (100, "一百"), (101, "一百零一"), (110, "一百一十"),
                                       (118, "一百一十八"), (135, "一百三十五"), (266, "二百六十六")])
def test_chinese_numerals_round_trip(n, numeral):
    assert int_to_cn(n) == numeral
    assert cn_to_int(numeral) == n


def test_there_are_law_files():
    assert len(law_files()) >= 15


@pytest.mark.parametrize("path", law_files(), ids=lambda p: p.name)
def test_front_matter_is_complete(path):
    meta, _ = parse(path)
    missing = [k for k in REQUIRED if not meta.get(k)]
    assert not missing, f"{path.name}: front matter lacks {missing}"
    assert meta["retrieved"] == "2026-12-01", path.name
    assert meta["completeness"] in ("full text", "excerpt"), path.name
    if meta["source_repository"] in ("LawRefBook/Laws", "Theonefkguy/Chinese-Laws"):
        assert re.fullmatch(r"[0-9a-f]{40}", meta["source_commit"]), f"{path.name}: source_commit"


@pytest.mark.parametrize("path", law_files(), ids=lambda p: p.name)
def test_articles_in_front_matter_are_the_headings_of_the_text(path):
    meta, body = parse(path)
    held = headings(body, meta)
    assert len(held) == len(set(held)), f"{path.name}: an article heading appears twice"
    assert held == expand(meta["articles"]), f"{path.name}: front matter articles differ from the text"


@pytest.mark.parametrize("path", full_text_files(), ids=lambda p: p.name)
def test_full_texts_have_every_article_in_order(path):
    # Excerpts are checked against the index instead (test_every_article_the_index_lists_...).
    _, body = parse(path)
    held = headings(body)
    assert held == [article(n) for n in range(1, len(held) + 1)], path.name


def test_index_names_every_file_once():
    files = [r["file"] for r in index_rows()]
    assert sorted(files) == sorted(p.name for p in law_files())
    assert len(files) == len(set(files))


@pytest.mark.parametrize("row", index_rows(), ids=lambda r: r["file"])
def test_every_article_the_index_lists_is_in_its_file(row):
    meta, body = parse(LAW_DIR / row["file"])
    held = set(headings(body, meta))
    listed = expand(row["articles"])
    assert listed, f"INDEX.md lists no articles for {row['file']}"
    assert not [a for a in listed if a not in held], f"{row['file']}: INDEX lists articles the file lacks"


def _article_text(body, heading, meta=None):
    pattern = PARAGRAPH if (meta or {}).get("numbering") == "paragraphs" else ARTICLE
    found = [m for m in pattern.finditer(body) if m.group(1) == heading]
    if not found:
        raise KeyError(heading)
    start = found[0].start()
    nxt = pattern.search(body, start + 1)
    return body[start:nxt.start() if nxt else len(body)].strip()


QUOTE = re.compile(r"「(.+?)」")
CITATION = re.compile(r"([\w.-]+\.md) (第[零一二三四五六七八九十百]+条|（[一二三四五六七八九十]+）)")


def findings_quotes():
    """(quote, file, heading) for each 「quote」 in FINDINGS.md; file and heading are those of the
    first citation after the quote on the same line, or None when the line cites nothing after it."""
    out = []
    for line in (LAW_DIR / "FINDINGS.md").read_text(encoding="utf-8").splitlines():
        cites = list(CITATION.finditer(line))
        for q in QUOTE.finditer(line):
            after = [c for c in cites if c.start() > q.end()]
            out.append((q.group(1), *(after[0].groups() if after else (None, None))))
    return out


def test_food_safety_articles_unchanged_by_the_2025_amendment():
    # The 2025 text (Theonefkguy/Chinese-Laws, transcribed) against the 2021 text (LawRefBook/Laws,
    # extracted): the amending decision of 2025-09-12 did not touch these articles.
    _, new = parse(LAW_DIR / "food-safety-law.2025.md")
    _, old = parse(LAW_DIR / "food-safety-law.2021.md")
    for heading in headings(new):
        assert _article_text(new, heading) == _article_text(old, heading), heading


def test_order_45_amendment_of_2025_changes_only_art_14_item_4():
    # Both texts transcribed/extracted from different repositories; any other difference would be
    # a copying error (or an amendment we have not recorded).
    _, new = parse(LAW_DIR / "samr-order-45-penalty-publicity.2025.md")
    _, old = parse(LAW_DIR / "samr-order-45-penalty-publicity.2021.md")
    changed = [h for h in headings(new) if _article_text(new, h).replace("\u3000", " ", 1) != _article_text(old, h)]
    assert changed == ["第十四条"]
    assert "（四）未在经营异常名录和严重违法失信名单中。" in _article_text(old, "第十四条")
    assert "（四）未在市场监督管理严重违法失信名单中。" in _article_text(new, "第十四条")


def test_findings_quote_many_articles():
    assert len([q for q in findings_quotes() if q[1]]) >= 60


@pytest.mark.parametrize("quote,file,heading", findings_quotes(), ids=lambda v: str(v)[:24])
def test_findings_quotes_are_verbatim(quote, file, heading):
    if file is None:  # a word quoted in running text: it must at least occur in some law file
        assert any(quote in parse(p)[1] for p in law_files()), quote
        return
    meta, body = parse(LAW_DIR / file)
    assert quote in _article_text(body, heading, meta), f"not in {file} {heading}: {quote}"


def test_malformed_front_matter_is_refused_with_the_file_name(tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("第一条 正文\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.md: no front matter"):
        parse(bad)
    bad.write_text("---\ntitle: x\nno colon here\n---\n", encoding="utf-8")
    with pytest.raises(ValueError, match="without key"):
        parse(bad)


def test_every_basis_the_catalog_quotes_stands_verbatim_under_its_article():
    # The loader refuses the catalog otherwise; this names each quote on its own.
    import json
    from rules import lawtexts
    data = json.loads((LAW_DIR.parents[1] / "catalog" / "measures.json").read_text(encoding="utf-8"))
    bases = [(m["id"], b) for m in data["measures"] for b in m["bases"]]
    bases += [("proportionality", b) for b in data["proportionality"]["bases"]]
    assert len(bases) >= 16
    for owner, basis in bases:
        assert lawtexts.quote_problem(basis["law_file"], basis["article"], basis["quote"]) is None, owner
        assert basis["quote"] in _article_text(parse(LAW_DIR / basis["law_file"])[1],
                                               basis["article"]), owner  # the test's own reader


def test_the_law_text_reader_finds_articles_and_paragraphs():
    from rules import lawtexts
    text = lawtexts.article_text("samr-order-44-serious-violation-list.2021.md", "第十五条")
    assert text.startswith("第十五条") and "不适用告知承诺制" in text and "第十六条" not in text
    opinions = lawtexts.article_text("shanxi-platform-economy-opinions.2023.md", "（十九）")
    assert "抽查比例和频次" in opinions
    assert "not found verbatim" in lawtexts.quote_problem(
        "samr-order-44-serious-violation-list.2021.md", "第十六条", "不适用告知承诺制")
    assert "no article" in lawtexts.quote_problem(
        "samr-order-44-serious-violation-list.2021.md", "第九十九条", "x")
    assert "not a law file" in lawtexts.quote_problem("FINDINGS.md", "第一条", "x")
