"""Phone numbers are normalised to E.164 or refused with what is wrong and how to write them."""

from __future__ import annotations

import phonenumbers
import pytest

from smsgate.numbers import InvalidNumber, is_robot_sender, normalize, region_of, timezones_for


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+12025550123", None, "+12025550123"),
        ("+1 (202) 555-0123", None, "+12025550123"),
        ("(202) 555-0123", "US", "+12025550123"),
        ("030 1234567", "DE", "+49301234567"),
        ("+39 06 1234 5678", None, "+390612345678"),
        ("+15555550101", None, "+15555550101"),  # NANP fictional 555-01xx line, the simulator's handsets
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalize(raw, default_region=region) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("call me", "letters"),
        ("2025550123", "country code"),
        ("+1202555", "wrong number of digits|too short"),
        ("+15551234567", "no such number range"),
        ("+999555012345", "country code"),
    ],
)
def test_invalid_numbers_say_why_and_how_to_write_them(raw: str, reason: str) -> None:
    with pytest.raises(InvalidNumber, match=reason) as err:
        normalize(raw)
    assert "+12025550123" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_non_text_number_is_refused_not_crashed() -> None:
    with pytest.raises(InvalidNumber, match="not text"):
        normalize(12025550123)  # type: ignore[arg-type]


def test_fast_path_agrees_with_phonenumbers_for_example_numbers_of_every_region() -> None:
    checked = 0
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            assert normalize(e164) == e164
            # One digit more: the fast path must refuse exactly what the full parser refuses.
            longer = e164 + "9"
            parsed = phonenumbers.parse(longer, None)
            full_ok = phonenumbers.is_possible_number(parsed) and phonenumbers.is_valid_number(parsed)
            if full_ok:
                assert normalize(longer) == phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            else:
                with pytest.raises(InvalidNumber):
                    normalize(longer)
            checked += 1
    assert checked > 300


def test_region_and_time_zones_come_from_the_number() -> None:
    assert region_of("+442079460000") == "GB"
    assert timezones_for("+442079460000") == ["Europe/London"]
    assert region_of("nonsense") is None and timezones_for("nonsense") == []


@pytest.mark.parametrize(
    ("sender", "robot"),
    [("CARRIER", True), ("72345", True), ("", True), ("+12025550123", False), ("+442079460000", False),
     # the simulator's (fictional 555-01xx) handsets are people too, or the demo would never get a reply
     ("+15555550101", False), ("12025550123", False)],
)
def test_machines_are_told_from_people(sender: str, robot: bool) -> None:
    assert is_robot_sender(sender) is robot


def test_fast_path_agrees_with_phonenumbers_on_random_digits() -> None:
    import random

    rng = random.Random(20261122)
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    for _ in range(3000):
        raw = f"+{rng.choice(codes)}{rng.randint(10**5, 10**12)}"
        try:
            parsed = phonenumbers.parse(raw, None)
            ok = phonenumbers.is_possible_number(parsed) and phonenumbers.is_valid_number(parsed)
        except phonenumbers.NumberParseException:
            ok = False
        if ok:
            assert normalize(raw) == phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        else:
            with pytest.raises(InvalidNumber):
                normalize(raw)


def test_fictional_numbers_are_accepted_however_they_are_written() -> None:
    assert normalize("+1 (555) 555-0101") == normalize("+15555550101") == "+15555550101"



def test_national_fast_path_agrees_with_phonenumbers_for_example_numbers_of_every_region() -> None:
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
            digits = "".join(c for c in national if c.isdigit())
            for written in (national, digits, digits + "9", digits[:-1], digits[1:]):
                try:
                    expected: str | None = phonenumbers.format_number(
                        phonenumbers.parse(written, region), phonenumbers.PhoneNumberFormat.E164)
                    parsed = phonenumbers.parse(written, region)
                    if not phonenumbers.is_valid_number(parsed):
                        expected = None
                except phonenumbers.NumberParseException:
                    expected = None
                try:
                    got: str | None = normalize(written, default_region=region)
                except InvalidNumber:
                    got = None
                assert got == expected, (region, written)
                checked += 1
    assert checked > 1000
