"""Identity documents per type, the person id and the mask (shared.identity)."""
import pytest
from stdnum.cn import ric

from shared import identity
from shared.identity import DocumentProblem, IdentityKeyMissing, document, mask

KEY = bytes(range(32))


def checked(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")


@pytest.mark.parametrize("kind, number, country", [
    ("resident_id_card", "11010119900307803X", None),
    ("hk_macau_residence_permit", checked("81000019900101123"), None),
    ("hk_macau_residence_permit", checked("82000019751231004"), None),
    ("taiwan_residence_permit", checked("83000020000229111"), None),
    ("foreign_permanent_resident_card", checked("93311019900101001"), None),
    ("foreign_permanent_resident_card", "USA110090010101", None),
    ("hk_macau_travel_permit", "H12345678", None),
    ("hk_macau_travel_permit", "M1234567890", None),
    ("taiwan_travel_permit", "12345678", None),
    ("passport", "E12345678", "CHN"),
    ("passport", "EA1234567", "chn"),
    ("passport", "X1234567", "USA"),
])
def test_documents_of_every_kind_are_accepted(kind, number, country):
    doc = document(kind, number, country)
    assert doc.number == number and doc.document_type == kind
    assert number not in repr(doc) and number not in str(doc)


@pytest.mark.parametrize("kind, number, country, field, problem", [
    ("resident_id_card", checked("11010119800231123"), None, "id_number", "birth date"),
    ("resident_id_card", checked("11010120990101123"), None, "id_number", "impossible"),
    ("resident_id_card", "11010119900307803", None, "id_number", "18 characters"),
    ("resident_id_card", "110101199003078030", None, "id_number", "check character"),
    ("resident_id_card", checked("99010119900307803"), None, "id_number", "region"),
    ("hk_macau_residence_permit", checked("83000019900101123"), None, "id_number", "810000"),
    ("taiwan_residence_permit", checked("83000019901301123"), None, "id_number", "birth date"),
    ("foreign_permanent_resident_card", checked("11010119900307803"), None, "id_number",
     "starts with 9"),
    ("foreign_permanent_resident_card", "US1100900101011", None, "id_number", "3 letters"),
    ("hk_macau_travel_permit", "X12345678", None, "id_number", "H or M"),
    ("passport", "E12345678", None, "issuing_country", "issuing country"),
    ("passport", "G1234567", "CHN", "id_number", "CHN passport"),
    ("passport", "EI1234567", "CHN", "id_number", "CHN passport"),  # no I or O
    ("passport", "1234567890", "USA", "id_number", "ICAO"),
    ("taiwan_travel_permit", "12345678", "USA", "issuing_country", "only passports"),
    ("driving_licence", "12345678", None, "document_type", "must be one of"),
])
def test_a_bad_document_is_refused_naming_the_field(kind, number, country, field, problem):
    with pytest.raises(DocumentProblem) as err:
        document(kind, number, country)
    assert err.value.field == field and problem in err.value.problem


def test_the_mask_shows_neither_birth_date_nor_region():
    number = "11010119900307803X"
    masked = mask(number)
    assert masked == "1****************X"
    assert "110101" not in masked and "19900307" not in masked
    assert mask("H12345678") == "H*******8" and mask("abc") == "***"


def test_the_same_document_gives_the_same_person_id_and_another_key_another():
    a = identity.person_id(document("resident_id_card", "11010119900307803x"), KEY)
    b = identity.person_id(document("resident_id_card", " 110101 19900307803X"), KEY)
    other = identity.person_id(document("resident_id_card", "11010119900307803X"), KEY[::-1])
    assert a == b != other
    assert a.startswith("p1_") and len(a) == 67


def test_a_renewed_hk_macau_travel_permit_is_the_same_person():
    first = identity.person_id(document("hk_macau_travel_permit", "H1234567800"), KEY)
    renewed = identity.person_id(document("hk_macau_travel_permit", "H1234567801"), KEY)
    bare = identity.person_id(document("hk_macau_travel_permit", "H12345678"), KEY)
    other = identity.person_id(document("hk_macau_travel_permit", "M1234567800"), KEY)
    assert first == renewed == bare != other


def test_protect_keeps_type_id_and_mask_and_never_the_number():
    kept = identity.protect(document("passport", "X1234567", "USA"), KEY)
    assert kept == {"document_type": "passport", "issuing_country": "USA",
                    "person_id": identity.person_id(document("passport", "X1234567", "USA"), KEY),
                    "id_masked": "X******7"}


def test_no_key_no_start_outside_development():
    with pytest.raises(IdentityKeyMissing, match="LIANCHEN_PII_KEY"):
        identity.load_key({})
    with pytest.raises(IdentityKeyMissing, match="at least 32"):
        identity.load_key({"LIANCHEN_PII_KEY": "00" * 16})
    with pytest.raises(IdentityKeyMissing, match="hex or base64"):
        identity.load_key({"LIANCHEN_PII_KEY": "not a key!"})
    assert identity.load_key({"LIANCHEN_PII_KEY": KEY.hex()}) == KEY
    import base64
    assert identity.load_key({"LIANCHEN_PII_KEY": base64.b64encode(KEY).decode()}) == KEY
    assert len(identity.load_key({"LIANCHEN_DEV": "1"})) == 32
    dev = identity.load_key({"LIANCHEN_DEV": "1"}).hex()
    with pytest.raises(IdentityKeyMissing, match="development key"):
        identity.load_key({"LIANCHEN_PII_KEY": dev})


def test_legacy_hashes_are_kept_only_keyed():
    number = "11010119900307803X"
    hashes = identity.legacy_hashes(number, {})
    assert len(hashes) == 2 and all(len(h) == 64 for h in hashes)
    ref = identity.legacy_ref(hashes[0], KEY)
    assert ref.startswith("l1_") and hashes[0] not in ref
    assert identity.legacy_ref(hashes[0], KEY[::-1]) != ref
