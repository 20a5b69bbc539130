"""How an SMS text is encoded and into how many parts it splits (3GPP TS 23.038 / 23.040), pure.

A text made only of GSM 03.38 characters goes as GSM-7: 160 septets in one part, 153 per part when
split (the rest of each part is the concatenation header). The characters of the extension table
(``^{}\\[~]|€`` and the form feed) take two septets each, and a split never cuts such a pair. One
character outside the alphabet — any Cyrillic letter — makes the whole text UCS-2: 70 characters in
one part, 67 per part; a character outside the Basic Multilingual Plane (an emoji) takes two of them
and is not cut either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_PARTS = 10  # a longer text is refused: operators and gateways alike treat it as a mistake

GSM_BASIC = frozenset(
    '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?'
    '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà'
)
GSM_EXTENSION = frozenset('\f^{}\\[~]|€')


class Encoding(StrEnum):
    GSM7 = 'GSM-7'
    UCS2 = 'UCS-2'


_SINGLE = {Encoding.GSM7: 160, Encoding.UCS2: 70}
_PER_PART = {Encoding.GSM7: 153, Encoding.UCS2: 67}


@dataclass(frozen=True)
class SmsParts:
    """What the dialog shows live: encoding, length in the encoding's units, parts and room left."""

    encoding: Encoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: int
    per_part: int  # the capacity of one part at this length (160/153 or 70/67)
    left: int  # units left in the last part before another part starts

    @property
    def too_long(self) -> bool:
        return self.parts > MAX_PARTS

    def describe(self) -> str:
        """«UCS-2 · 75 символов · 2 части (ещё 59)» — the counter under the text."""
        word = 'часть' if self.parts == 1 else 'части' if 2 <= self.parts <= 4 else 'частей'
        return f'{self.encoding} · {self.units} симв. · {self.parts} {word} (осталось {self.left})'


def encoding_of(text: str) -> Encoding:
    allowed = GSM_BASIC | GSM_EXTENSION
    return Encoding.GSM7 if all(char in allowed for char in text) else Encoding.UCS2


def _widths(text: str, encoding: Encoding) -> list[int]:
    """The units each character takes: pairs (extension characters, surrogate pairs) are never cut."""
    if encoding is Encoding.GSM7:
        return [2 if char in GSM_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def sms_parts(text: str) -> SmsParts:
    encoding = encoding_of(text)
    widths = _widths(text, encoding)
    units = sum(widths)
    single = _SINGLE[encoding]
    if units <= single:
        return SmsParts(encoding, units, 1 if units else 0, single, single - units)
    per_part = _PER_PART[encoding]
    parts, used = 1, 0
    for width in widths:
        if used + width > per_part:
            parts, used = parts + 1, 0
        used += width
    return SmsParts(encoding, units, parts, per_part, per_part - used)
