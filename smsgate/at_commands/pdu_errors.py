"""Errors of the PDU codec. Kept apart from errors.py: the codec knows nothing of modems or AT commands."""

from __future__ import annotations


class PduError(ValueError):
    """A PDU that cannot be decoded: says what is wrong and at which octet (0 = first octet of the hex)."""

    def __init__(self, message: str, *, octet: int | None = None) -> None:
        super().__init__(message)
        self.octet = octet


class EncodeError(ValueError):
    """Input that cannot be put into an SMS-SUBMIT (bad number, text too long for 255 parts, ...)."""
