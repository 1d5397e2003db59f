"""Salesforce-style record ids: 15 case-sensitive characters plus a 3-character checksum.

Ids are a pure function of (key prefix, row number), so a row's id never needs a lookup
table and the ids sort in row order (fixed-width base62 in ASCII order), like real ids sort
roughly by creation time.
"""

from __future__ import annotations

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_POD = "000"  # instance + reserved characters; matches the server core's user ids
_SERIAL_WIDTH = 9


def _checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-char id case-insensitively unique."""
    suffix = []
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix.append(_CHECKSUM_ALPHABET[bits])
    return "".join(suffix)


def make_id(prefix: str, serial: int) -> str:
    """18-char id for the `serial`-th record (1-based) of the object with `prefix`."""
    digits = []
    value = serial
    for _ in range(_SERIAL_WIDTH):
        value, remainder = divmod(value, 62)
        digits.append(BASE62[remainder])
    id15 = prefix + _POD + "".join(reversed(digits))
    return id15 + _checksum(id15)


def is_well_formed(value: str) -> bool:
    """True for a syntactically valid 15- or 18-char id (checksum checked for 18)."""
    if not isinstance(value, str) or len(value) not in (15, 18):
        return False
    if any(char not in BASE62 for char in value[:15]):
        return False
    return len(value) == 15 or value[15:].upper() == _checksum(value[:15])


def normalize(value: str) -> str:
    """The 18-char form of a well-formed 15- or 18-char id."""
    return value[:15] + _checksum(value[:15])


def serial_of(value: str) -> int | None:
    """The row serial encoded in an id made by `make_id` (None if not one of ours)."""
    if not is_well_formed(value) or value[3:6] != _POD:
        return None
    serial = 0
    for char in value[6:15]:
        serial = serial * 62 + BASE62.index(char)
    return serial
