"""The SMS part counter: GSM-7 and UCS-2 limits, characters that take two units, the 10-part limit."""

from __future__ import annotations

import pytest

from crm.domain.sms_text import MAX_PARTS, Encoding, encoding_of, sms_parts


@pytest.mark.parametrize(
    ('text', 'units', 'parts', 'left'),
    [
        ('', 0, 0, 160),
        ('a', 1, 1, 159),
        ('a' * 160, 160, 1, 0),
        ('a' * 161, 161, 2, 153 * 2 - 161),
        ('a' * 306, 306, 2, 0),
        ('a' * 307, 307, 3, 153 * 3 - 307),
    ],
)
def test_gsm7_is_160_in_one_part_and_153_per_part(text: str, units: int, parts: int, left: int) -> None:
    counted = sms_parts(text)
    assert (counted.encoding, counted.units, counted.parts, counted.left) == (
        Encoding.GSM7,
        units,
        parts,
        left,
    )
    assert counted.per_part == (160 if parts <= 1 else 153)


@pytest.mark.parametrize(
    ('text', 'units', 'parts', 'left'),
    [
        ('Я', 1, 1, 69),
        ('Я' + 'a' * 69, 70, 1, 0),
        ('Я' + 'a' * 70, 71, 2, 67 * 2 - 71),
        ('Я' * 134, 134, 2, 0),
        ('Я' * 135, 135, 3, 67 * 3 - 135),
    ],
)
def test_one_cyrillic_letter_makes_the_whole_text_ucs2(text: str, units: int, parts: int, left: int) -> None:
    counted = sms_parts(text)
    assert (counted.encoding, counted.units, counted.parts, counted.left) == (
        Encoding.UCS2,
        units,
        parts,
        left,
    )
    assert counted.per_part == (70 if parts <= 1 else 67)


@pytest.mark.parametrize('char', list('@£$¥èéÇΔ_ΦΓΛΩ!"#¤%&\'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà\n\r'))
def test_the_gsm_alphabet_stays_gsm7(char: str) -> None:
    assert encoding_of(f'Pay {char} now') is Encoding.GSM7


@pytest.mark.parametrize('char', ['ё', 'Ж', '«', '»', '—', '₽', '№', 'ç', '`', '😀'])
def test_anything_outside_it_is_ucs2(char: str) -> None:
    assert encoding_of(f'Pay {char} now') is Encoding.UCS2


def test_extension_characters_count_two_septets() -> None:
    assert sms_parts('€' * 80) == sms_parts('a' * 160)  # 160 septets: still one part
    counted = sms_parts('{}[]~^|\\€\f')
    assert (counted.encoding, counted.units, counted.parts) == (Encoding.GSM7, 20, 1)
    assert sms_parts('a' * 159 + '€').parts == 2  # 161 septets


def test_a_split_never_cuts_an_extension_character() -> None:
    # 152 septets, then '€' would take the 153rd and a 154th: it starts the second part instead
    counted = sms_parts('a' * 152 + '€' + 'a' * 8)
    assert (counted.units, counted.parts, counted.left) == (162, 2, 153 - 10)
    assert sms_parts('a' * 153 + '€' + 'a' * 7).left == 153 - 9  # here the first part is full as it is


def test_emoji_take_two_units_and_are_never_cut() -> None:
    assert sms_parts('😀' * 35) == sms_parts('Я' * 70)  # 70 UTF-16 units: one part
    counted = sms_parts('Я' * 66 + '😀' + 'Я' * 3)  # the emoji would straddle the first part's end
    assert (counted.encoding, counted.units, counted.parts, counted.left) == (Encoding.UCS2, 71, 2, 67 - 5)


@pytest.mark.parametrize(
    ('text', 'parts'), [('a' * 1530, 10), ('a' * 1531, 11), ('Я' * 670, 10), ('Я' * 671, 11)]
)
def test_more_than_ten_parts_is_too_long(text: str, parts: int) -> None:
    counted = sms_parts(text)
    assert counted.parts == parts
    assert counted.too_long is (parts > MAX_PARTS)


def test_the_counter_reads_in_russian() -> None:
    assert sms_parts('Я' * 71).describe() == 'UCS-2 · 71 симв. · 2 части (осталось 63)'
    assert sms_parts('a').describe() == 'GSM-7 · 1 симв. · 1 часть (осталось 159)'
    assert sms_parts('Я' * 350).describe() == 'UCS-2 · 350 симв. · 6 частей (осталось 52)'
