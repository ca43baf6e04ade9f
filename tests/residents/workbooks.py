"""Spreadsheets built in memory for the import, export and civil-affairs feed tests."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import xlsxwriter

from canteen.residents.imports import FEED_COLUMNS, RESIDENT_COLUMNS

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook(
    rows: list[dict[str, Any]],
    *,
    columns: tuple | list | None = None,
    headers: dict[str, str] | None = None,
    title: str | None = None,
    numbers_as_numbers: bool = False,
) -> bytes:
    """An .xlsx with a header row (Chinese title, English key beneath, like the template) and
    `rows` given by column key. `headers` overrides header texts; `title` adds a row above."""
    columns = list(columns or [c.key for c in RESIDENT_COLUMNS])
    titles = {c.key: f"{c.title}\n{c.key}" for c in (*RESIDENT_COLUMNS, *FEED_COLUMNS)}
    titles.update(headers or {})
    output = io.BytesIO()
    book = xlsxwriter.Workbook(output, {"strings_to_formulas": False, "in_memory": True})
    sheet = book.add_worksheet("居民")
    text = book.add_format({"num_format": "@"})
    first = 0
    if title:
        sheet.write_string(0, 0, title)
        first = 1
    for index, key in enumerate(columns):
        sheet.write_string(first, index, titles.get(key, key))
    for offset, row in enumerate(rows, start=first + 1):
        for index, key in enumerate(columns):
            value = row.get(key)
            if value is None:
                continue
            if isinstance(value, date):
                sheet.write_datetime(offset, index, value, book.add_format({"num_format": "yyyy-mm-dd"}))
            elif isinstance(value, int | float) or (numbers_as_numbers and str(value).isdigit()):
                sheet.write_number(offset, index, float(value))
            else:
                sheet.write_string(offset, index, str(value), text)
    book.close()
    return output.getvalue()


def feed_csv(rows: list[dict[str, Any]], *, bom: bool = True, headers: tuple[str, ...] | None = None) -> bytes:
    """A civil-affairs CSV in UTF-8 (with a BOM, as Excel saves it, unless `bom` is false)."""
    keys = ("id_number", "event", "effective_on", "note")
    output = io.StringIO()
    writer = csv.writer(output)
    writer.writerow(headers or ("证件号码", "事件", "生效日期", "备注"))
    for row in rows:
        writer.writerow([row.get(key, "") for key in keys])
    return (("\ufeff" if bom else "") + output.getvalue()).encode()


def upload(content: bytes, name: str = "residents.xlsx") -> dict[str, Any]:
    """The keyword arguments of a multipart POST carrying `content` as the field `file`."""
    return {"data": {"file": (io.BytesIO(content), name)}, "content_type": "multipart/form-data"}
