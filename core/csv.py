"""CSV that a spreadsheet opens as text, never as a formula (CSV injection), streamed as it is
written: every CSV download of the app goes through `stream_csv`."""

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse

# Excel, LibreOffice and Google Sheets run a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> str:
    """The cell text for `value`, with a leading apostrophe when it would start a formula.
    Tracked data and imported rows are attacker-controlled: "=HYPERLINK(...)" must stay text."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


class _Echo:
    """A file that hands back what is written to it: csv.writer formats a row, the response sends it."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The header then each row as a CSV line, every cell through csv_safe (a header can be
    attacker-controlled too: an imported file's own column names)."""
    writer = csv.writer(_Echo())
    yield writer.writerow([csv_safe(v) for v in header])
    for row in rows:
        yield writer.writerow([csv_safe(v) for v in row])


def stream_csv(
    *, filename: str, header: Iterable[Any], rows: Iterable[Iterable[Any]]
) -> StreamingHttpResponse:
    """A CSV download written while it is sent: with rows from `.iterator()`, a large export is
    never all in memory."""
    response = StreamingHttpResponse(csv_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
