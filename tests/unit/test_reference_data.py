"""Reference data in forms/ is well-formed and internally consistent (police forces, LAs, SSDA903 codes)."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORCES_PATH = ROOT / "forms" / "reference" / "police_forces.toml"
LAS_PATH = ROOT / "forms" / "reference" / "local_authorities.toml"
CODES_PATH = ROOT / "forms" / "codes" / "ssda903.toml"

REGIONS = {
    "North East", "North West", "Yorkshire and The Humber", "East Midlands", "West Midlands",
    "East of England", "London", "South East", "South West",
}
CODE_LISTS = ("LS", "PLACE", "PLACE_PROVIDER", "REASON_PLACE_CHANGE", "SEX", "ETHNIC", "MISSING")


def _load(path: Path) -> dict:
    with path.open("rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="module")
def forces() -> list[dict]:
    return _load(FORCES_PATH)["force"]


@pytest.fixture(scope="module")
def authorities() -> list[dict]:
    return _load(LAS_PATH)["authority"]


@pytest.fixture(scope="module")
def code_lists() -> dict:
    return _load(CODES_PATH)


@pytest.fixture(scope="module")
def la_by_short_name(authorities) -> dict[str, dict]:
    return {la["short_name"]: la for la in authorities}


def _duplicates(values) -> list:
    return [value for value, n in Counter(values).items() if n > 1]


# --- Police forces -----------------------------------------------------------------------------------------------

def test_there_are_44_forces_with_unique_well_formed_codes(forces):
    codes = [f["code"] for f in forces]
    assert len(forces) == 44
    assert not _duplicates(codes)
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", code) for code in codes), codes
    assert not _duplicates(f["name"] for f in forces)


def test_every_force_has_all_fields(forces):
    for force in forces:
        assert set(force) == {"code", "name", "country", "non_emergency", "area"}, force
        assert all(isinstance(v, str) and v.strip() for v in force.values()), force


def test_exactly_one_british_transport_police(forces):
    btp = [f for f in forces if f["name"] == "British Transport Police"]
    assert len(btp) == 1
    assert btp[0]["country"] == "Great Britain"
    assert btp[0]["non_emergency"] == "0800 40 50 40"
    assert [f for f in forces if f["country"] == "Great Britain"] == btp


def test_39_english_and_4_welsh_territorial_forces_use_101(forces):
    by_country = Counter(f["country"] for f in forces)
    assert by_country == {"England": 39, "Wales": 4, "Great Britain": 1}
    assert {f["non_emergency"] for f in forces if f["country"] != "Great Britain"} == {"101"}


def test_forces_use_current_names(forces):
    names = {f["code"]: f["name"] for f in forces}
    assert names["hampshire"] == "Hampshire and Isle of Wight Constabulary"
    assert names["metropolitan"] == "Metropolitan Police Service"
    assert names["city-of-london"] == "City of London Police"


# --- Local authorities -------------------------------------------------------------------------------------------

def test_number_of_authorities(authorities):
    assert 150 <= len(authorities) <= 156


def test_la_codes_are_unique_and_well_formed(authorities):
    codes = [la["code"] for la in authorities]
    assert not _duplicates(codes)
    bad = [code for code in codes if not re.fullmatch(r"E(06|08|09|10)\d{6}", code)]
    assert not bad


def test_la_names_are_unique_and_regions_valid(authorities):
    for la in authorities:
        assert set(la) == {"code", "name", "short_name", "region", "police_force"}, la
        assert la["region"] in REGIONS, la
    assert not _duplicates(la["name"] for la in authorities)
    assert not _duplicates(la["short_name"] for la in authorities)


def test_london_has_32_boroughs_and_the_city(authorities):
    london = [la for la in authorities if la["region"] == "London"]
    assert len(london) == 33
    assert all(la["code"].startswith("E09") for la in london)


def test_every_la_maps_to_an_existing_force(authorities, forces):
    force_codes = {f["code"] for f in forces}
    unknown = [(la["short_name"], la["police_force"]) for la in authorities if la["police_force"] not in force_codes]
    assert not unknown


def test_every_english_territorial_force_covers_at_least_one_la(authorities, forces):
    used = {la["police_force"] for la in authorities}
    english = {f["code"] for f in forces if f["country"] == "England"}
    assert len(english) == 39
    assert english - used == set()
    welsh_or_btp = {f["code"] for f in forces if f["country"] != "England"}
    assert not used & welsh_or_btp


def test_2023_reorganisations_are_present(la_by_short_name):
    assert la_by_short_name["Cumberland"]["code"] == "E06000063"
    assert la_by_short_name["Westmorland and Furness"]["code"] == "E06000064"
    assert la_by_short_name["North Yorkshire"]["code"] == "E06000065"
    assert la_by_short_name["Somerset"]["code"] == "E06000066"
    assert la_by_short_name["Cumberland"]["police_force"] == "cumbria"
    assert la_by_short_name["Westmorland and Furness"]["police_force"] == "cumbria"


def test_london_forces(la_by_short_name):
    assert la_by_short_name["City of London"]["police_force"] == "city-of-london"
    assert la_by_short_name["Camden"]["police_force"] == "metropolitan"
    assert la_by_short_name["Westminster"]["police_force"] == "metropolitan"


@pytest.mark.parametrize(("force", "expected"), [
    ("thames-valley", {"Bracknell Forest", "West Berkshire", "Reading", "Slough", "Windsor and Maidenhead",
                       "Wokingham", "Buckinghamshire", "Milton Keynes", "Oxfordshire"}),
    ("west-mercia", {"Herefordshire", "Shropshire", "Telford and Wrekin", "Worcestershire"}),
    ("devon-and-cornwall", {"Devon", "Cornwall", "Plymouth", "Torbay", "Isles of Scilly"}),
    ("avon-and-somerset", {"Bristol", "Bath and North East Somerset", "North Somerset", "South Gloucestershire",
                           "Somerset"}),
    ("cumbria", {"Cumberland", "Westmorland and Furness"}),
    ("dorset", {"Dorset", "Bournemouth, Christchurch and Poole"}),
    ("northamptonshire", {"North Northamptonshire", "West Northamptonshire"}),
])
def test_force_areas(authorities, force, expected):
    assert {la["short_name"] for la in authorities if la["police_force"] == force} == expected


# --- SSDA903 code lists ------------------------------------------------------------------------------------------

def test_all_code_lists_present(code_lists):
    assert set(CODE_LISTS) <= set(code_lists)


@pytest.mark.parametrize("name", CODE_LISTS)
def test_code_list_has_unique_codes_and_readable_labels(code_lists, name):
    code_list = code_lists[name]
    assert code_list["title"].strip() and code_list["source"].strip()
    codes = [entry["code"] for entry in code_list["codes"]]
    assert codes and not _duplicates(codes)
    for entry in code_list["codes"]:
        label = entry["label"]
        assert isinstance(label, str) and label.strip(), entry
        assert len(label) <= 110, entry
        assert label[0].isupper() or label[0].isdigit(), entry


def test_code_list_sizes(code_lists):
    sizes = {name: len(code_lists[name]["codes"]) for name in CODE_LISTS}
    assert sizes == {"LS": 13, "PLACE": 29, "PLACE_PROVIDER": 6, "REASON_PLACE_CHANGE": 12, "SEX": 2,
                     "ETHNIC": 20, "MISSING": 2}


def test_place_is_the_2025_26_list(code_lists):
    codes = {entry["code"] for entry in code_lists["PLACE"]["codes"]}
    assert {"T1", "K3", "Z11", "Z12", "Z13", "Z14"} <= codes
    assert not codes & {"H5", "P2", "Z1"}


def test_sex_and_missing_codes(code_lists):
    assert {e["code"]: e["label"] for e in code_lists["SEX"]["codes"]} == {"1": "Male", "2": "Female"}
    assert {e["code"] for e in code_lists["MISSING"]["codes"]} == {"M", "A"}
