"""The review report as a CSV download, for the page and the API alike."""

from __future__ import annotations

from fastapi.responses import Response

from mailvault.errors import InputError
from mailvault.usecases import reviewing
from mailvault.usecases.reviewing import ReviewReport

TABLES = ("periods", "reviewers")


def csv_response(result: ReviewReport, table: str) -> Response:
    """One table of the report (``periods`` or ``reviewers``) as a CSV attachment."""
    if table not in TABLES:
        raise InputError(f"the report's tables are {' and '.join(TABLES)}, not {table!r}.")
    text = reviewing.periods_csv(result) if table == "periods" \
        else reviewing.reviewers_csv(result)
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="review-{table}.csv"'})
