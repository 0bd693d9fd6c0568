import pytest

from rules import uscc
from tests.factories import make_uscc

# Real, published codes (authority 9 = market regulation) and constructed ones for other
# authorities, including Y, which python-stdnum refuses.
VALID = ["91350100M000100Y43", "91110000600037341L", "911100001000079554",
         uscc.make("Y1110000MB0N12345"), uscc.make("51110000500000000"),
         uscc.make("12100000400000000"), uscc.make("N2350100MA2Y00000")]


@pytest.mark.parametrize("code", VALID)
def test_valid_codes_pass(code):
    assert uscc.validate(code) == code


def test_lower_case_and_spaces_are_normalised():
    assert uscc.validate(" 91350100m000100y43 ") == "91350100M000100Y43"


@pytest.mark.parametrize("code,problem", [
    ("91350100M000100Y44", "wrong check character"),
    ("91350100M000100Y4", "must be 18 characters"),
    ("91350100M000100I43", "outside the USCC alphabet"),
    ("91350100M000100O43", "outside the USCC alphabet"),
    ("Z1350100M000100Y43", "outside the USCC alphabet"),
    ("C1350100M000100Y43", "unknown registering authority"),
    ("9135A100M000100Y43", "numeric region code"),
    (None, "must be a string"),
])
def test_invalid_codes_say_why(code, problem):
    with pytest.raises(uscc.InvalidUSCC, match=problem):
        uscc.validate(code)


def test_every_single_character_error_is_caught():
    # 31 is prime and every weight is below it, so any one substituted character changes the
    # weighted sum modulo 31: the check character catches all of them.
    code = "91350100M000100Y43"
    for pos in range(18):
        for ch in uscc.ALPHABET:
            if ch != code[pos]:
                mutated = code[:pos] + ch + code[pos + 1:]
                assert not uscc.is_valid(mutated), mutated


def test_check_character_matches_the_standard_formula():
    # GB 32100-2015: check = 31 - (sum mod 31), with 31 -> 0
    code = "91350100M000100Y4"
    total = sum(uscc.ALPHABET.index(c) * w for c, w in zip(code, uscc.WEIGHTS))
    assert uscc.check_character(code) == uscc.ALPHABET[(31 - total % 31) % 31]


def test_facts_come_from_the_code():
    facts = uscc.facts("91350100M000100Y43")
    assert facts.region_code == "350100"
    assert facts.province_code == "350000"
    assert facts.entity_type == "enterprise"


def test_generated_codes_are_valid():
    for _ in range(200):
        assert uscc.is_valid(make_uscc())


def test_mask_hides_the_organisation_code():
    masked = uscc.mask("91350100M000100Y43")
    assert masked == "91350100******0Y43"
    assert "M000100" not in masked


@pytest.mark.parametrize("typed", ["91350100M000100Y43", "9135 0100 M000 100Y 43",
                                   "91350100-M000100Y43", "91350100\u3000M000100Y43",
                                   "91350100\uff0dm000100y43", " 91350100M000100Y43 "])
def test_normalise_drops_the_separators_people_type(typed):
    assert uscc.validate(uscc.normalise(typed)) == "91350100M000100Y43"


def test_normalise_keeps_what_validate_must_refuse():
    assert uscc.normalise(None) is None
    with pytest.raises(uscc.InvalidUSCC, match="outside the USCC alphabet"):
        uscc.validate(uscc.normalise("91350100M000100Y4_"))


def test_a_body_field_accepts_a_typed_code_and_stores_it_normalised():
    from contracts.common import USCC
    from marshmallow import Schema, ValidationError

    class Body(Schema):
        code = USCC(required=True)

    assert Body().load({"code": "9135-0100-M000-100Y-43"}) == {"code": "91350100M000100Y43"}
    with pytest.raises(ValidationError, match="wrong check character"):
        Body().load({"code": "9135-0100-M000-100Y-44"})
