"""CSV cells that a spreadsheet opens as text, never as a formula (CSV injection)."""

from typing import Any

# Excel, LibreOffice and Google Sheets run a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> str:
    """The cell text for `value`, with a leading apostrophe when it would start a formula.
    Tracked data and imported rows are attacker-controlled: "=HYPERLINK(...)" must stay text."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text
