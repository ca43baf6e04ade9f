"""The registry and spreadsheets: the import template, the all-or-nothing bulk import, the masked
export, and the civil-affairs feed of deaths, moves out and 低保/特困 decisions.

Workbooks are read with openpyxl and written with XlsxWriter (`strings_to_formulas` off, ID
numbers as text). Every row goes through the registry's own service functions, so an imported
resident obeys exactly the rules of one registered by hand; services here only flush.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import unicodedata
import warnings
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import IO, Any, BinaryIO

import marshmallow as ma
import sqlalchemy as sa
import xlsxwriter
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from canteen.core import clock, scoping
from canteen.core.audit_log import record_event
from canteen.core.errors import CanteenError, NotFound, ValidationFailed
from canteen.core.privacy import mask_id_number, mask_phone, mask_text
from canteen.extensions import db
from canteen.org import service as org_service
from canteen.org.models import Community, District
from canteen.residents import id_numbers, schemas
from canteen.residents import service as resident_service
from canteen.residents.models import (
    MealCard,
    Resident,
    ResidentCategory,
)

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# XlsxWriter: a cell text starting with "=" stays text (a name like "=SUM(..)" must not run)
WORKBOOK_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False}
MAX_ROWS = 10_000
MAX_UNPACKED_BYTES = 64 * 1024 * 1024  # an .xlsx is a zip: refuse one that unpacks to far more than it weighs
MAX_REPORTED_PROBLEMS = 1_000
HEADER_SCAN_ROWS = 10
EXPORT_PAGE_SIZE = 1_000
IMPORT_SOURCE = "import"
FEED_SOURCE = "civil_affairs"
OFFICERS = resident_service.OFFICERS

# --- vocabularies: code → Chinese names (the first is the label written in templates and exports) ---
DOC_TYPE_NAMES = {
    id_numbers.RESIDENT_ID_CARD: ("居民身份证", "身份证"),
    id_numbers.HMT_RESIDENCE_PERMIT: ("港澳台居民居住证", "居住证", "港澳台居住证"),
    id_numbers.PASSPORT: ("护照",),
}
SEX_NAMES = {"male": ("男", "m"), "female": ("女", "f")}
RESTRICTION_NAMES = {
    "low_salt": ("低盐", "少盐"),
    "low_sugar": ("低糖", "控糖"),
    "low_fat": ("低脂", "少油"),
    "soft": ("软食",),
    "minced": ("碎食", "切碎"),
    "halal": ("清真",),
    "vegetarian": ("素食", "吃素"),
}
ALLERGEN_NAMES = {
    "peanut": ("花生",),
    "tree_nut": ("坚果", "树坚果"),
    "milk": ("牛奶", "乳制品", "奶"),
    "egg": ("鸡蛋", "蛋", "蛋类"),
    "soy": ("大豆", "黄豆", "豆制品"),
    "wheat": ("小麦", "麸质"),
    "fish": ("鱼", "鱼类"),
    "shellfish": ("贝类", "甲壳类", "虾蟹"),
    "sesame": ("芝麻",),
}
CATEGORY_NAMES = {
    "extreme_poverty": ("特困", "特困人员", "特困供养"),
    "subsistence": ("低保", "最低生活保障"),
    "low_income": ("低收入",),
    "disabled": ("失能/半失能", "失能", "半失能"),
    "living_alone": ("独居/空巢", "独居", "空巢"),
    "special_care": ("重点优抚", "优抚"),
}
AGE_CATEGORY_NAMES = {"aged_60_plus": ("60周岁以上",), "aged_80_plus": ("80周岁以上",)}
CONSENT_NAMES = {
    "signed_form": ("本人签字", "签字", "本人签署", "书面同意"),
    "family_on_behalf": ("家属代签", "家属代为签字", "代签"),
}
STATUS_NAMES = {"active": ("在册",), "suspended": ("暂停",), "deceased": ("已故", "死亡"), "moved_out": ("迁出",)}
YES = ("是", "yes", "y", "true", "1", "√")
NO = ("否", "no", "n", "false", "0", "×")
FEED_EVENTS = {
    "death": ("死亡", "去世", "身故"),
    "moved_out": ("迁出", "户籍迁出"),
    "subsistence_granted": ("低保认定", "纳入低保", "低保纳入"),
    "subsistence_revoked": ("低保取消", "退出低保", "低保退出"),
    "extreme_poverty_granted": ("特困认定", "纳入特困"),
    "extreme_poverty_revoked": ("特困取消", "特困终止", "退出特困"),
}
# what each feed event does: a status taking effect, or a category granted / revoked
EVENT_STATUS = {"death": "deceased", "moved_out": "moved_out"}
EVENT_CATEGORY = {
    "subsistence_granted": ("subsistence", "grant"),
    "subsistence_revoked": ("subsistence", "revoke"),
    "extreme_poverty_granted": ("extreme_poverty", "grant"),
    "extreme_poverty_revoked": ("extreme_poverty", "revoke"),
}


def label(names: dict[str, tuple[str, ...]], code: str | None) -> str:
    """The Chinese label of a code (the code itself when it has none)."""
    if code is None:
        return ""
    return names.get(code, (code,))[0]


def _key(text: str) -> str:
    return re.sub(r"[\s*＊:：]+", "", unicodedata.normalize("NFKC", text)).lower()


def _code_for(names: dict[str, tuple[str, ...]], text: str) -> str | None:
    wanted = _key(text)
    for code, aliases in names.items():
        if wanted == _key(code) or any(wanted == _key(alias) for alias in aliases):
            return code
    return None


# --- columns ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One column of a workbook: its key (the English name, also the `field` of a row error), the
    Chinese title officers see, what goes in it, and other titles it is recognised by."""

    key: str
    title: str
    help_zh: str
    help_en: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    text: bool = False  # formatted as text in the template: long numbers keep every digit
    is_date: bool = False
    width: int = 14
    choices: tuple[str, ...] = ()  # a drop-down in the template


def _labels(names: dict[str, tuple[str, ...]]) -> str:
    return "、".join(aliases[0] for aliases in names.values())


def _codes(names: dict[str, tuple[str, ...]]) -> str:
    return ", ".join(names)


RESIDENT_COLUMNS: tuple[Column, ...] = (
    Column("name", "姓名", "必填，1–50 个字", "Required, 1–50 characters", ("老人姓名",), required=True, width=10),
    Column(
        "id_doc_type",
        "证件类型",
        f"{_labels(DOC_TYPE_NAMES)}；留空为居民身份证",
        f"{_codes(DOC_TYPE_NAMES)} (code or Chinese label); blank: resident_id_card",
        choices=tuple(aliases[0] for aliases in DOC_TYPE_NAMES.values()),
        width=16,
    ),
    Column(
        "id_number",
        "证件号码",
        "必填。身份证、居住证 18 位（校验位须正确，末位可为 X）；护照 5–20 位字母或数字。本列是文本格式，请勿改成数字",
        "Required. 18 characters for ID cards and residence permits (check digit verified, last may be X); "
        "passports 5–20 letters or digits. The column is text: do not turn it into numbers",
        ("身份证号", "身份证号码", "公民身份号码", "证件号"),
        required=True,
        text=True,
        width=22,
    ),
    Column(
        "birth_date",
        "出生日期",
        "仅护照填写（身份证、居住证由号码推出，可留空）；如 1950-03-01",
        "Passports only (derived from ID card numbers); YYYY-MM-DD",
        is_date=True,
        width=12,
    ),
    Column(
        "sex",
        "性别",
        "仅护照填写：男 / 女",
        "Passports only: 男/女 or male/female",
        choices=("男", "女"),
        width=8,
    ),
    Column(
        "phone",
        "手机",
        "可选；数字、空格、+ 或 -",
        "Optional; digits, spaces, '+' or '-'",
        ("手机号", "手机号码", "电话", "联系电话"),
        text=True,
        width=14,
    ),
    Column(
        "district_code",
        "区划代码",
        "6 位行政区划代码，如 630102；区级用户可留空（即本区）",
        "6-digit division code, e.g. 630102; officers may leave it blank (their own district)",
        ("行政区划代码", "区县代码"),
        text=True,
        width=10,
    ),
    Column(
        "community",
        "社区",
        "社区名称，须是该区已有的社区；可留空",
        "Name of a community of the district; optional",
        ("所属社区", "社区名称"),
        width=14,
    ),
    Column("address", "住址", "最多 200 字", "At most 200 characters", ("地址", "家庭住址", "居住地址"), width=24),
    Column(
        "card_no",
        "助餐卡号",
        "可选；4–30 位字母、数字或 -，全市不重复",
        "Optional; 4–30 letters, digits or '-', unique in the city",
        ("卡号", "助餐卡"),
        text=True,
        width=14,
    ),
    Column(
        "delivery",
        "送餐",
        "是 / 否；留空为否",
        "是/否 (yes/no); blank: no",
        ("是否送餐", "送餐上门"),
        choices=("是", "否"),
        width=8,
    ),
    Column(
        "emergency_contact",
        "紧急联系人",
        "姓名和电话，最多 100 字",
        "Name and phone, at most 100 characters",
        ("紧急联系人及电话",),
        text=True,
        width=20,
    ),
    Column(
        "restrictions",
        "饮食限制",
        f"多个用逗号或顿号分隔：{_labels(RESTRICTION_NAMES)}",
        f"Several separated by commas: {_codes(RESTRICTION_NAMES)}",
        ("饮食禁忌",),
        width=16,
    ),
    Column(
        "allergens",
        "过敏原",
        f"多个用逗号或顿号分隔：{_labels(ALLERGEN_NAMES)}",
        f"Several separated by commas: {_codes(ALLERGEN_NAMES)}",
        ("过敏", "食物过敏"),
        width=14,
    ),
    Column(
        "diet_notes",
        "饮食备注",
        "最多 500 字",
        "At most 500 characters",
        ("饮食说明",),
        width=20,
    ),
    Column(
        "categories",
        "类别",
        "类别:开始日期，或 类别:开始日期~结束日期；多个用逗号或顿号分隔，如 低保:2026-01-01、独居:2025-06-01。"
        f"类别：{_labels(CATEGORY_NAMES)}（年龄类别按出生日期自动计算，不必填写）",
        "category:start or category:start~end; several separated by commas, e.g. subsistence:2026-01-01. "
        f"Categories: {_codes(CATEGORY_NAMES)} (age categories are derived, never typed)",
        ("保障类别", "人员类别"),
        width=26,
    ),
    Column(
        "consent_method",
        "同意方式",
        f"个人信息处理同意书：{_labels(CONSENT_NAMES)}；可留空",
        f"Consent to processing personal data: {_codes(CONSENT_NAMES)}; optional",
        ("同意书",),
        choices=tuple(aliases[0] for aliases in CONSENT_NAMES.values()),
        width=12,
    ),
    Column(
        "consent_date",
        "同意日期",
        "签署同意书的日期；填写了同意方式而此处留空则为导入当天",
        "Day the consent was given; blank with a method: the day of the import",
        is_date=True,
        width=12,
    ),
)
FEED_COLUMNS: tuple[Column, ...] = (
    Column(
        "id_number",
        "证件号码",
        "必填",
        "Required",
        ("身份证号", "身份证号码", "公民身份号码", "证件号"),
        required=True,
        text=True,
        width=22,
    ),
    Column(
        "event",
        "事件",
        f"{_labels(FEED_EVENTS)}（或代码）",
        _codes(FEED_EVENTS),
        ("变更类型", "事项", "类型"),
        required=True,
    ),
    Column(
        "effective_on",
        "生效日期",
        "如 2026-03-01",
        "YYYY-MM-DD",
        ("日期", "变更日期", "发生日期"),
        required=True,
        is_date=True,
    ),
    Column("note", "备注", "可选", "Optional", ("说明",), width=30),
)
_TITLES = {column.key: column.title for column in (*RESIDENT_COLUMNS, *FEED_COLUMNS)}


# --- reading workbooks -----------------------------------------------------------------------
@dataclass(frozen=True)
class SheetRow:
    """One data row: its number as Excel shows it, and its cells by column key."""

    number: int
    values: dict[str, Any]


@dataclass(frozen=True)
class Sheet:
    """The data rows of an uploaded table and the columns its header named."""

    rows: list[SheetRow]
    columns: tuple[str, ...]


def _file_error(code: str, message_zh: str, message_en: str) -> ValidationFailed:
    return ValidationFailed(message_en, code=code, errors={"file": [message_en]}, details={"message_zh": message_zh})


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls


def _read_table(data: bytes, columns: tuple[Column, ...], *, csv_allowed: bool) -> Sheet:
    if not data:
        raise _file_error("empty_file", "上传的文件是空的", "The uploaded file is empty.")
    if data.startswith(b"PK\x03\x04"):
        tables: Iterable[Iterator[tuple[Any, ...]]] = _xlsx_tables(data)
    elif data.startswith(_OLE_MAGIC):
        raise _file_error(
            "unsupported_file", "不支持旧版 .xls，请另存为 .xlsx", "Old .xls workbooks are not read: save as .xlsx."
        )
    elif csv_allowed:
        tables = [_csv_rows(data)]
    else:
        raise _file_error("unsupported_file", "请上传 .xlsx 工作簿", "Upload an .xlsx workbook.")
    for rows in tables:
        sheet = _sheet_from_rows(rows, columns)
        if sheet is not None:
            return sheet
    titles = "、".join(c.title for c in columns if c.required)
    keys = ", ".join(c.key for c in columns if c.required)
    raise _file_error(
        "missing_columns",
        f"找不到表头：前 {HEADER_SCAN_ROWS} 行中须有 {titles} 等列",
        f"No header row found: the first {HEADER_SCAN_ROWS} rows must name the columns {keys}.",
    )


def _xlsx_tables(data: bytes) -> Iterator[Iterator[tuple[Any, ...]]]:
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise _file_error("unreadable_file", "文件已损坏，无法读取", "The workbook is damaged.") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise _file_error("file_too_large", "工作簿内容过大", "The workbook unpacks to too much data.")
    try:
        # openpyxl warns about features it drops (data validation extensions, default styles);
        # none of them matter for reading values
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a file that is not a workbook
        raise _file_error(
            "unreadable_file", "无法读取该工作簿，请上传 .xlsx 文件", "Not a readable .xlsx workbook."
        ) from None
    try:
        for worksheet in workbook.worksheets:
            yield worksheet.iter_rows(values_only=True)
    finally:
        workbook.close()


def _csv_rows(data: bytes) -> Iterator[tuple[Any, ...]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # civil-affairs systems still export GBK now and then; GB 18030 is its superset
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise _file_error("unreadable_file", "CSV 须为 UTF-8 编码", "A CSV file must be UTF-8.") from None
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    return (tuple(row) for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _header_map(cells: tuple[Any, ...], columns: tuple[Column, ...]) -> dict[int, str]:
    names: dict[str, str] = {}
    for column in columns:
        for name in (column.key, column.title, *column.aliases):
            names.setdefault(_key(name), column.key)
    found: dict[int, str] = {}
    for index, cell in enumerate(cells):
        if not isinstance(cell, str):
            continue
        # "证件号码\nid_number", "姓名*", "证件号码（必填）", "birth_date/出生日期"
        for part in re.split(r"[\n\r()（）\[\]【】/]+", cell):
            key = names.get(_key(part))
            if key is not None and key not in found.values():
                found[index] = key
                break
    return found


def _sheet_from_rows(rows: Iterator[tuple[Any, ...]], columns: tuple[Column, ...]) -> Sheet | None:
    required = {c.key for c in columns if c.required}
    header: dict[int, str] | None = None
    data_rows: list[SheetRow] = []
    for number, cells in enumerate(rows, start=1):
        if header is None:
            if number > HEADER_SCAN_ROWS:
                return None
            candidate = _header_map(cells, columns)
            if required <= set(candidate.values()):
                header = candidate
            continue
        values = {key: cells[index] for index, key in header.items() if index < len(cells)}
        if all(_text(v) is None for v in values.values()):
            continue
        if len(data_rows) >= MAX_ROWS:
            raise _file_error(
                "too_many_rows", f"一次最多导入 {MAX_ROWS} 行，请分批", f"At most {MAX_ROWS} rows at a time: split it."
            )
        data_rows.append(SheetRow(number, values))
    if header is None:
        return None
    return Sheet(rows=data_rows, columns=tuple(header.values()))


# --- cells -----------------------------------------------------------------------------------
class _BadCell(ValueError):
    def __init__(self, message_zh: str, message_en: str, code: str = "invalid_value") -> None:
        super().__init__(message_en)
        self.message_zh, self.message_en, self.code = message_zh, message_en, code


def _text(value: Any) -> str | None:
    """A cell as trimmed text (None when blank); whole numbers lose Excel's ".0"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return YES[0] if value else NO[0]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).replace("\u200b", "").replace("\ufeff", "").strip()
    return text or None


_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def _date(value: Any) -> date | None:
    """A date from a date cell, "2026-03-01", "2026/3/1", "2026年3月1日" or "20260301"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 3_000 <= value < 100_000:
        # a date typed into a General cell arrives as Excel's serial day number (3000: 1908-03-18);
        # smaller numbers are more likely a year or a typo than a date, and are refused below
        from openpyxl.utils.datetime import from_excel

        return from_excel(value).date()
    text = _text(value) or ""
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    if match:
        try:
            return date(*(int(part) for part in match.groups()))
        except ValueError:
            pass
    raise _BadCell(f"“{text}”不是有效日期（如 2026-03-01）", f"{text!r} is not a valid date (YYYY-MM-DD).")


def _id_number_cell(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        digits = _text(value) or ""
        if len(digits) >= 15:  # Excel keeps 15 significant digits
            raise _BadCell(
                "证件号码被 Excel 存成了数字，末几位已丢失；请把该列设为文本后重新填写",
                "Excel stored the ID number as a number and lost its last digits: format the column as text "
                "and type it again.",
                "id_number_as_number",
            )
    text = _text(value)
    if text is None:
        return None
    text = re.sub(r'^="(.*)"$', r"\1", text).lstrip("'")  # CSV tricks that keep Excel off the digits
    return id_numbers.normalise(text) or None


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in re.split(r"[,，、;；\n]+", text or "") if part.strip()]


# --- row errors ------------------------------------------------------------------------------
def _problem(row: int, field_key: str, code: str, message_zh: str, message_en: str) -> dict[str, Any]:
    return {
        "row": row,
        "field": field_key,
        "column": _TITLES.get(field_key, field_key),
        "code": code,
        "message_zh": message_zh,
        "message_en": message_en,
    }


# service and schema field names → import columns
_FIELD_COLUMNS = {
    "district_id": "district_code",
    "community_id": "community",
    "delivery_registered": "delivery",
    "diet": "diet_notes",
    "diet.notes": "diet_notes",
    "diet.restrictions": "restrictions",
    "diet.allergens": "allergens",
    "consent": "consent_method",
    "consent.method": "consent_method",
    "consent.given_on": "consent_date",
    "category": "categories",
    "valid_from": "categories",
    "valid_to": "categories",
}
# Chinese for the errors the registry raises, by code (English comes from the error itself)
_CODE_ZH = {
    "resident_exists": "该证件号码已登记，不能重复登记",
    "card_taken": "该助餐卡号已被使用",
    "resident_too_young": "未满 60 周岁（按登记日计算），不能登记",
    "district_not_found": "不在您的辖区",
    "community_not_found": "社区不存在或不在您的辖区",
    "community_mismatch": "社区不在该区",
    "category_overlap": "同一类别的有效期重叠",
}
# the column of errors that name no field
_CODE_COLUMNS = {"district_not_found": "district_code", "community_not_found": "community"}
_CODE_EN = {
    "resident_exists": "A resident with this ID number is already registered.",
    "district_not_found": "Not in your district.",
}
# Chinese for the reasons id_numbers.parse gives, by the start of the English reason
_ID_REASONS_ZH = (
    ("A passport number", "护照号码应为 5–20 位字母或数字"),
    ("An ID number is 18 characters", "身份证号码应为 18 位：17 位数字加 1 位数字或 X"),
    ("A Hong Kong, Macao or Taiwan", "港澳台居民居住证号码应以 810000、820000 或 830000 开头"),
    ("The birth date inside the ID number is not a real date", "号码中的出生日期不是真实的日期"),
    ("The birth date inside the ID number is not plausible", "号码中的出生日期不合理"),
    ("The check digit is wrong", "校验位错误：号码有输入错误"),
    ("Unknown document type", "证件类型无法识别"),
)
_FIELD_MESSAGES_ZH = {
    ("birth_date", "Required for a passport."): "护照须填写出生日期",
    ("sex", "Required for a passport."): "护照须填写性别",
    ("birth_date", "Derived from the ID number; leave it out."): "出生日期与证件号码不符（由号码推出，可留空）",
    ("sex", "Derived from the ID number; leave it out."): "性别与证件号码不符（由号码推出，可留空）",
    ("valid_to", "Before valid_from."): "类别的结束日期早于开始日期",
}
# Chinese for the API schema's refusals, by column
_SCHEMA_ZH = {
    "name": "姓名应为 1–50 个字",
    "id_number": "证件号码长度应为 5–30 位",
    "phone": "手机号码格式不对（只能有数字、空格、+ 或 -，5–20 位）",
    "card_no": "助餐卡号应为 4–30 位字母、数字或 -",
    "address": "住址最多 200 字",
    "emergency_contact": "紧急联系人最多 100 字",
    "diet_notes": "饮食备注最多 500 字",
    "restrictions": "饮食限制不在可选范围内",
    "allergens": "过敏原不在可选范围内",
    "consent_method": "同意方式不在可选范围内",
    "consent_date": "同意日期无效",
}
GENERIC_ZH = "数据有误（详见英文说明）"


def _chinese_for(code: str, field_name: str, message: str) -> str:
    if code == "invalid_id_number":
        for start, chinese in _ID_REASONS_ZH:
            if message.startswith(start):
                return chinese
        if message.endswith("is not a province code."):
            return "号码前两位不是有效的省级代码"
        return "证件号码无效"
    return _FIELD_MESSAGES_ZH.get((field_name, message)) or _CODE_ZH.get(code) or GENERIC_ZH


def problems_from_error(row: int, error: CanteenError, *, default_field: str = "") -> list[dict[str, Any]]:
    """A registry error as row problems with Chinese and English reasons: a small mapping from the
    codes and fields the services raise, else a generic Chinese message beside the English."""
    default_field = _CODE_COLUMNS.get(error.code, default_field)
    pairs = [(f, m) for f, messages in error.errors.items() for m in messages] or [(default_field, error.message)]
    problems = []
    for field_name, message in pairs:
        column = _FIELD_COLUMNS.get(field_name, field_name) or default_field
        # one field: the error's own sentence says more ("Card X is already issued." over "Taken.")
        message_en = _CODE_EN.get(error.code) or (error.message if len(pairs) == 1 else message)
        problems.append(_problem(row, column, error.code, _chinese_for(error.code, field_name, message), message_en))
    return problems


def _flatten_schema_errors(messages: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(messages, dict):
        for key, inner in messages.items():
            if isinstance(key, int):  # an item of a list: the list is the column
                yield from _flatten_schema_errors(inner, prefix.rstrip("."))
            else:
                yield from _flatten_schema_errors(inner, f"{prefix}{key}.")
    elif isinstance(messages, list):
        for message in messages:
            yield from _flatten_schema_errors(message, prefix)
    else:
        yield prefix.rstrip("."), str(messages)


# --- the import template ---------------------------------------------------------------------
def build_import_template() -> bytes:
    """The workbook officers fill in: one sheet of columns (Chinese title, English key beneath;
    ID number, phone and card columns formatted as text so 18-digit numbers keep every digit),
    and a sheet explaining each column and the allowed values. Officers and admin."""
    scoping.require_role(*OFFICERS)
    output = io.BytesIO()
    workbook = xlsxwriter.Workbook(output, {**WORKBOOK_OPTIONS, "in_memory": True})
    header = workbook.add_format(
        {"bold": True, "text_wrap": True, "valign": "vcenter", "align": "center", "bg_color": "#DDEBF7", "border": 1}
    )
    required_header = workbook.add_format(
        {"bold": True, "text_wrap": True, "valign": "vcenter", "align": "center", "bg_color": "#FCE4D6", "border": 1}
    )
    text = workbook.add_format({"num_format": "@"})
    day = workbook.add_format({"num_format": "yyyy-mm-dd"})
    sheet = workbook.add_worksheet("居民")
    sheet.set_row(0, 36)
    for index, column in enumerate(RESIDENT_COLUMNS):
        sheet.set_column(index, index, column.width, text if column.text else day if column.is_date else None)
        sheet.write_string(0, index, f"{column.title}\n{column.key}", required_header if column.required else header)
        sheet.write_comment(0, index, f"{column.help_zh}\n{column.help_en}", {"x_scale": 2, "y_scale": 2})
        if column.choices:
            sheet.data_validation(
                1, index, MAX_ROWS, index, {"validate": "list", "source": list(column.choices), "show_error": False}
            )
    sheet.freeze_panes(1, 0)
    _write_instructions(workbook.add_worksheet("填写说明"), workbook)
    workbook.close()
    return output.getvalue()


def _write_instructions(sheet, workbook) -> None:
    bold = workbook.add_format({"bold": True})
    title = workbook.add_format({"bold": True, "font_size": 14})
    wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 1, 20)
    sheet.set_column(2, 2, 8)
    sheet.set_column(3, 4, 60)
    sheet.write(0, 0, "居民批量导入说明 / How to fill in the resident import", title)
    sheet.write(
        1,
        0,
        "第一个工作表的每一行是一位居民；任一行有误时整批都不导入，并逐行列出错误原因。 / One resident per row "
        "of the first sheet; if any row is wrong nothing is imported and every error is listed.",
    )
    row = 3
    sheet.write_row(row, 0, ["列 / column", "字段 / key", "必填 / required", "说明", "Description"], bold)
    for column in RESIDENT_COLUMNS:
        row += 1
        sheet.write_row(
            row,
            0,
            [column.title, column.key, "是 / yes" if column.required else "", column.help_zh, column.help_en],
            wrap,
        )
    vocabularies = (
        ("证件类型 id_doc_type", DOC_TYPE_NAMES),
        ("性别 sex", SEX_NAMES),
        ("饮食限制 restrictions", RESTRICTION_NAMES),
        ("过敏原 allergens", ALLERGEN_NAMES),
        ("类别 categories", CATEGORY_NAMES),
        ("同意方式 consent_method", CONSENT_NAMES),
    )
    for heading, names in vocabularies:
        row += 2
        sheet.write(row, 0, heading, bold)
        row += 1
        sheet.write_row(row, 0, ["中文", "代码 / code", "", "也可写作 / also accepted"], bold)
        for code, aliases in names.items():
            row += 1
            sheet.write_row(row, 0, [aliases[0], code, "", "、".join(aliases[1:])])
    row += 2
    sheet.write(row, 0, "送餐 delivery", bold)
    sheet.write(row + 1, 0, f"是：{'、'.join(YES)}；否：{'、'.join(NO)}")
    row += 3
    sheet.write(row, 0, "示例 / examples", bold)
    examples = (
        ("类别 categories", "低保:2026-01-01、独居:2025-06-01~2026-12-31"),
        ("饮食限制 restrictions", "低盐、软食"),
        ("过敏原 allergens", "花生, shellfish"),
        ("出生日期 birth_date", "1950-03-01（仅护照 / passports only）"),
    )
    for offset, (name, example) in enumerate(examples, start=1):
        sheet.write_row(row + offset, 0, [name, example])


# --- the bulk import -------------------------------------------------------------------------
def read_resident_workbook(stream: BinaryIO) -> Sheet:
    """Officers and admin read an import workbook (the first sheet whose header names at least
    姓名 and 证件号码; a title row above the header is fine). The role is checked before the
    file is opened, so other roles get 403 whatever they upload; an unreadable file answers 422."""
    scoping.require_role(*OFFICERS)
    return _read_table(stream.read(), RESIDENT_COLUMNS, csv_allowed=False)


@dataclass(frozen=True)
class ImportResult:
    created: int
    resident_ids: list[int]


@dataclass
class _ImportContext:
    scope: scoping.Scope
    default_district: District | None
    districts: dict[str, District | None] = field(default_factory=dict)
    communities: dict[int, dict[str, int]] = field(default_factory=dict)


def import_residents(
    sheet: Sheet, *, default_district_id: int | None = None, progress: Callable[[int], None] | None = None
) -> ImportResult:
    """Register every row of `sheet`, all or nothing.

    Each row goes through register_resident and add_category inside its own SAVEPOINT, so every
    registry rule applies (check digit, age 60, one resident per ID number, card numbers, the
    caller's scope); rows repeating an ID number or card number of an earlier row are refused
    too. If any row is bad, ValidationFailed `import_rejected` lists each bad row and column
    with a Chinese and an English reason, and the caller's transaction boundary rolls back
    every row. Officers import into their own district (a blank 区划代码 means theirs; another
    district is that row's error); admin into any, with `default_district_id` for blank codes.
    """
    scope = scoping.require_role(*OFFICERS)
    if not sheet.rows:
        raise _file_error("empty_import", "工作簿中没有数据行", "The workbook holds no data rows.")
    default = None
    if default_district_id is not None:
        default = org_service.get_district(default_district_id)
    elif scope.role == scoping.DISTRICT_OFFICER:
        default = org_service.get_district(scope.district_id)
    context = _ImportContext(scope=scope, default_district=default)
    problems: list[dict[str, Any]] = []
    seen_numbers: dict[str, int] = {}
    seen_cards: dict[str, int] = {}
    created: list[int] = []
    for row in sheet.rows:
        row_problems, fields, categories = _resident_row(row, context)
        number, card = fields.get("id_number"), fields.get("card_no")
        if number and number in seen_numbers:
            row_problems.append(
                _problem(
                    row.number,
                    "id_number",
                    "duplicate_in_file",
                    f"与第 {seen_numbers[number]} 行的证件号码重复",
                    f"Same ID number as row {seen_numbers[number]}.",
                )
            )
        if card and card in seen_cards:
            row_problems.append(
                _problem(
                    row.number,
                    "card_no",
                    "duplicate_in_file",
                    f"与第 {seen_cards[card]} 行的助餐卡号重复",
                    f"Same card number as row {seen_cards[card]}.",
                )
            )
        if number:
            seen_numbers.setdefault(number, row.number)
        if card:
            seen_cards.setdefault(card, row.number)
        if not row_problems:
            try:
                with db.session.begin_nested():
                    resident = resident_service.register_resident(**fields)
                    for category in categories:
                        resident_service.add_category(
                            resident.id, **category, source=IMPORT_SOURCE, evidence=f"批量导入第 {row.number} 行"
                        )
                created.append(resident.id)
            except CanteenError as error:
                row_problems.extend(problems_from_error(row.number, error))
        problems.extend(row_problems)
        if progress is not None:
            progress(1)
    if problems:
        bad_rows = len({p["row"] for p in problems})
        message = f"{bad_rows} of {len(sheet.rows)} rows have errors; nothing was imported."
        raise ValidationFailed(
            message,
            code="import_rejected",
            errors={"file": [message]},
            details={
                "message_zh": f"共 {len(sheet.rows)} 行，其中 {bad_rows} 行有误，全部未导入",
                "bad_rows": bad_rows,
                "truncated": len(problems) > MAX_REPORTED_PROBLEMS,
                "rows": problems[:MAX_REPORTED_PROBLEMS],
            },
        )
    return ImportResult(created=len(created), resident_ids=created)


def _resident_row(row: SheetRow, context: _ImportContext) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict]]:
    """Turn one row's cells into register_resident's arguments (through the API's own schema)
    and its categories; problems found on the way are returned, not raised."""
    problems: list[dict[str, Any]] = []
    cells = row.values
    data: dict[str, Any] = {}

    def cell(key: str, convert: Callable[[Any], Any] = _text) -> Any:
        try:
            return convert(cells.get(key))
        except _BadCell as bad:
            problems.append(_problem(row.number, key, bad.code, bad.message_zh, bad.message_en))
            return None

    def required(key: str, message_zh: str, message_en: str) -> None:
        problems.append(_problem(row.number, key, "required", message_zh, message_en))

    def choose(key: str, names: dict[str, tuple[str, ...]], what_zh: str, what_en: str) -> str | None:
        text = cell(key)
        if text is None:
            return None
        code = _code_for(names, text)
        if code is None:
            problems.append(
                _problem(
                    row.number,
                    key,
                    "unknown_value",
                    f"{what_zh}“{text}”无法识别，应为：{_labels(names)}",
                    f"Unknown {what_en} {text!r}; one of {_codes(names)}.",
                )
            )
        return code

    def choose_many(key: str, names: dict[str, tuple[str, ...]], what_zh: str, what_en: str) -> list[str]:
        codes = []
        for part in _split(cell(key)):
            code = _code_for(names, part)
            if code is None:
                problems.append(
                    _problem(
                        row.number,
                        key,
                        "unknown_value",
                        f"{what_zh}“{part}”不在可选范围内：{_labels(names)}",
                        f"Unknown {what_en} {part!r}; one of {_codes(names)}.",
                    )
                )
            else:
                codes.append(code)
        return codes

    name = cell("name")
    if name is None:
        required("name", "姓名必填", "Name is required.")
    data["name"] = name or ""
    data["id_doc_type"] = choose("id_doc_type", DOC_TYPE_NAMES, "证件类型", "document type") or (
        id_numbers.RESIDENT_ID_CARD
    )
    number = cell("id_number", _id_number_cell)
    if number is None and not any(p["field"] == "id_number" for p in problems):
        required("id_number", "证件号码必填", "ID number is required.")
    data["id_number"] = number or ""
    birth = cell("birth_date", _date)
    if birth is not None:
        data["birth_date"] = birth.isoformat()
    sex = choose("sex", SEX_NAMES, "性别", "sex")
    if sex is not None:
        data["sex"] = sex
    for key in ("phone", "address", "emergency_contact"):
        value = cell(key)
        if value is not None:
            data[key] = value
    card = cell("card_no")
    if card is not None:
        data["card_no"] = card
    district = _row_district(row, context, cell("district_code"), problems)
    if district is not None:
        data["district_id"] = district.id
        community = cell("community")
        if community is not None:
            community_id = _community_id(context, district, community)
            if community_id is None:
                problems.append(
                    _problem(
                        row.number,
                        "community",
                        "community_not_found",
                        f"{district.name}没有名为“{community}”的社区",
                        f"No community named {community!r} in {district.code}.",
                    )
                )
            data["community_id"] = community_id
    delivery = cell("delivery")
    if delivery is not None:
        if _key(delivery) in {_key(v) for v in YES}:
            data["delivery_registered"] = True
        elif _key(delivery) in {_key(v) for v in NO}:
            data["delivery_registered"] = False
        else:
            problems.append(
                _problem(
                    row.number, "delivery", "unknown_value", "送餐应填 是 或 否", "Delivery must be 是/否 (yes/no)."
                )
            )
    diet = {
        "restrictions": choose_many("restrictions", RESTRICTION_NAMES, "饮食限制", "restriction"),
        "allergens": choose_many("allergens", ALLERGEN_NAMES, "过敏原", "allergen"),
    }
    notes = cell("diet_notes")
    if notes is not None:
        diet["notes"] = notes
    data["diet"] = diet
    method = choose("consent_method", CONSENT_NAMES, "同意方式", "consent method")
    given_on = cell("consent_date", _date)
    if method is not None:
        data["consent"] = {"method": method, **({"given_on": given_on.isoformat()} if given_on else {})}
    elif given_on is not None and cells.get("consent_method") is None:
        problems.append(
            _problem(
                row.number,
                "consent_method",
                "required",
                "填写了同意日期，须同时填写同意方式",
                "A consent date needs a consent method.",
            )
        )
    categories = _categories(row, cell("categories"), problems)
    if problems:
        return problems, {"id_number": number, "card_no": card}, []
    try:
        fields = schemas.ResidentCreateSchema().load(data)
    except ma.ValidationError as invalid:
        for path, message in _flatten_schema_errors(invalid.messages):
            column = _FIELD_COLUMNS.get(path, path)
            problems.append(
                _problem(row.number, column, "validation_error", _SCHEMA_ZH.get(column, GENERIC_ZH), message)
            )
        return problems, {"id_number": number, "card_no": card}, []
    return problems, fields, categories


def _row_district(
    row: SheetRow, context: _ImportContext, code: str | None, problems: list[dict[str, Any]]
) -> District | None:
    if code is None:
        if context.default_district is None:
            problems.append(
                _problem(row.number, "district_code", "required", "区划代码必填", "The division code is required.")
            )
        return context.default_district
    if not re.fullmatch(r"\d{6}", code):
        problems.append(
            _problem(
                row.number,
                "district_code",
                "invalid_value",
                f"区划代码“{code}”应为 6 位数字",
                f"Division code {code!r} must be 6 digits.",
            )
        )
        return None
    if code not in context.districts:
        context.districts[code] = org_service.find_district_by_code(code)  # scoped: officers see their own
    district = context.districts[code]
    if district is None:
        if context.scope.unrestricted:
            problems.append(
                _problem(
                    row.number,
                    "district_code",
                    "district_not_found",
                    f"区划代码 {code} 不存在",
                    f"No district with code {code}.",
                )
            )
        else:
            problems.append(
                _problem(row.number, "district_code", "district_not_found", "不在您的辖区", "Not in your district.")
            )
    return district


def _community_id(context: _ImportContext, district: District, name: str) -> int | None:
    if district.id not in context.communities:
        context.communities[district.id] = dict(
            db.session.execute(
                sa.select(Community.name, Community.id).where(Community.district_id == district.id)
            ).all()
        )
    return context.communities[district.id].get(name)


_CATEGORY_ITEM = re.compile(r"^(?P<name>[^:：\s~～\d]+)[:：\s]*(?P<start>[^~～至]+?)\s*(?:[~～至]\s*(?P<end>.+))?$")


def _categories(row: SheetRow, text: str | None, problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    categories = []
    for item in _split(text):
        match = _CATEGORY_ITEM.match(item)
        code = _code_for(CATEGORY_NAMES, match.group("name")) if match else None
        if code is None:
            problems.append(
                _problem(
                    row.number,
                    "categories",
                    "unknown_value",
                    f"类别“{item}”无法识别：应为 类别:开始日期，如 低保:2026-01-01；类别为 {_labels(CATEGORY_NAMES)}",
                    f"Category {item!r} not understood: category:start, e.g. subsistence:2026-01-01; "
                    f"categories {_codes(CATEGORY_NAMES)}.",
                )
            )
            continue
        try:
            valid_from = _date(match.group("start"))
            valid_to = _date(match.group("end")) if match.group("end") else None
        except _BadCell as bad:
            problems.append(
                _problem(row.number, "categories", bad.code, f"类别{item}：{bad.message_zh}", bad.message_en)
            )
            continue
        categories.append({"category": code, "valid_from": valid_from, "valid_to": valid_to})
    return categories


# --- the export ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _ExportColumn:
    title: str
    key: str
    width: int
    value: Callable[[Resident, _ExportContext], Any]
    is_date: bool = False


@dataclass
class _ExportContext:
    today: date
    districts: dict[int, District]
    communities: dict[int, str]


def _joined(names: dict[str, tuple[str, ...]], codes: Iterable[str]) -> str:
    return "、".join(label(names, code) for code in codes)


_ALL_CATEGORY_NAMES = {**CATEGORY_NAMES, **AGE_CATEGORY_NAMES}


def _in_vocabulary_order(codes: list[str]) -> list[str]:
    order = list(_ALL_CATEGORY_NAMES)
    return sorted(codes, key=lambda code: order.index(code) if code in order else len(order))


EXPORT_COLUMNS: tuple[_ExportColumn, ...] = (
    _ExportColumn("编号", "id", 8, lambda r, c: r.id),
    _ExportColumn("姓名", "name", 10, lambda r, c: r.name),
    _ExportColumn("证件类型", "id_doc_type", 14, lambda r, c: label(DOC_TYPE_NAMES, r.id_doc_type)),
    _ExportColumn("证件号码（脱敏）", "id_number_masked", 22, lambda r, c: mask_id_number(r.id_number)),
    _ExportColumn("出生日期", "birth_date", 12, lambda r, c: r.birth_date, is_date=True),
    _ExportColumn("年龄", "age", 6, lambda r, c: id_numbers.age_on(r.birth_date, c.today)),
    _ExportColumn("性别", "sex", 6, lambda r, c: label(SEX_NAMES, r.sex)),
    _ExportColumn("手机（脱敏）", "phone_masked", 14, lambda r, c: mask_phone(r.phone)),
    _ExportColumn("区划代码", "district_code", 10, lambda r, c: c.districts[r.district_id].code),
    _ExportColumn("区", "district", 10, lambda r, c: c.districts[r.district_id].name),
    _ExportColumn("社区", "community", 14, lambda r, c: c.communities.get(r.community_id, "")),
    _ExportColumn("住址", "address", 24, lambda r, c: mask_text(r.address or "")),
    _ExportColumn("助餐卡号", "card_no", 14, lambda r, c: r.active_card.card_no if r.active_card else ""),
    _ExportColumn("送餐", "delivery", 6, lambda r, c: YES[0] if r.delivery_registered else NO[0]),
    _ExportColumn(
        "紧急联系人（脱敏）", "emergency_contact_masked", 20, lambda r, c: mask_text(r.emergency_contact or "")
    ),
    _ExportColumn("状态", "status", 8, lambda r, c: label(STATUS_NAMES, r.status)),
    _ExportColumn("状态生效日期", "status_effective_on", 12, lambda r, c: r.status_effective_on, is_date=True),
    _ExportColumn(
        "今日类别",
        "categories_today",
        24,
        lambda r, c: _joined(_ALL_CATEGORY_NAMES, _in_vocabulary_order(resident_service.categories_on(r, c.today))),
    ),
    _ExportColumn("饮食限制", "restrictions", 16, lambda r, c: _joined(RESTRICTION_NAMES, r.diet_restrictions)),
    _ExportColumn("过敏原", "allergens", 14, lambda r, c: _joined(ALLERGEN_NAMES, r.allergens)),
    _ExportColumn("饮食备注", "diet_notes", 20, lambda r, c: mask_text(r.diet_notes or "")),
    _ExportColumn("同意方式", "consent_method", 10, lambda r, c: label(CONSENT_NAMES, r.consent_method)),
    _ExportColumn("同意日期", "consent_date", 12, lambda r, c: r.consent_given_on, is_date=True),
    _ExportColumn("登记日期", "registered_on", 12, lambda r, c: r.registered_on, is_date=True),
)


def export_residents(
    *,
    q: str | None = None,
    district_id: int | None = None,
    community_id: int | None = None,
    status: str | None = None,
    category: str | None = None,
    without_consent: bool = False,
) -> IO[bytes]:
    """The registry as an Excel workbook, for officers (their district) and admin; other roles 403.

    The same filters and scope as the resident list. ID numbers and phones are masked, and ID
    or phone numbers inside free text (address, emergency contact, diet notes) too; categories
    are those held today, age categories included. The workbook is built page by page on a
    spooled temporary file (large exports spill to disk, not memory) and the export is written
    to the audit log. Returns the file, positioned at its start.
    """
    scope = scoping.require_role(*OFFICERS)
    filters = {
        "q": q,
        "district_id": district_id,
        "community_id": community_id,
        "status": status,
        "category": category,
        "without_consent": without_consent,
    }
    # handed to send_file, which closes it once the answer is sent
    output = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115
    try:
        written = _write_export(output, filters)
    except BaseException:
        output.close()
        raise
    output.seek(0)
    record_event(
        action="export",
        entity="residents",
        entity_id=None,
        district_id=scope.district_id if scope.role == scoping.DISTRICT_OFFICER else None,
        details={"rows": written, "filters": {k: v for k, v in filters.items() if v not in (None, False)}},
    )
    return output


def _write_export(output: IO[bytes], filters: dict[str, Any]) -> int:
    workbook = xlsxwriter.Workbook(output, {**WORKBOOK_OPTIONS, "constant_memory": True})
    header = workbook.add_format({"bold": True, "text_wrap": True, "valign": "vcenter", "bg_color": "#DDEBF7"})
    text = workbook.add_format({"num_format": "@"})
    day = workbook.add_format({"num_format": "yyyy-mm-dd"})
    sheet = workbook.add_worksheet("居民")
    sheet.set_row(0, 32)
    for index, column in enumerate(EXPORT_COLUMNS):
        sheet.set_column(index, index, column.width)
        sheet.write_string(0, index, f"{column.title}\n{column.key}", header)
    sheet.freeze_panes(1, 0)
    context = _ExportContext(today=clock.today(), districts={}, communities={})
    written, page = 0, 1
    while True:
        found = resident_service.search_residents(**filters, page=page, page_size=EXPORT_PAGE_SIZE)
        _load_for_export(found.items, context)
        for resident in found.items:
            written += 1
            for index, column in enumerate(EXPORT_COLUMNS):
                value = column.value(resident, context)
                if value is None or value == "":
                    continue
                if column.is_date:
                    sheet.write_datetime(written, index, datetime.combine(value, datetime.min.time()), day)
                elif isinstance(value, str):
                    sheet.write_string(written, index, value, text)
                else:
                    sheet.write_number(written, index, value)
        if not found.items or page * EXPORT_PAGE_SIZE >= found.total:
            break
        page += 1
    workbook.close()
    return written


def _load_for_export(residents: list[Resident], context: _ExportContext) -> None:
    """Cards, categories, districts and communities of one page in four queries, not per resident."""
    if not residents:
        return
    ids = [r.id for r in residents]
    cards: dict[int, list[MealCard]] = defaultdict(list)
    for card in db.session.scalars(sa.select(MealCard).where(MealCard.resident_id.in_(ids)).order_by(MealCard.id)):
        cards[card.resident_id].append(card)
    held: dict[int, list[ResidentCategory]] = defaultdict(list)
    for entry in db.session.scalars(
        sa.select(ResidentCategory)
        .where(ResidentCategory.resident_id.in_(ids))
        .order_by(ResidentCategory.valid_from, ResidentCategory.id)
    ):
        held[entry.resident_id].append(entry)
    for resident in residents:
        set_committed_value(resident, "cards", cards[resident.id])
        set_committed_value(resident, "categories", held[resident.id])
    missing_districts = {r.district_id for r in residents} - set(context.districts)
    if missing_districts:
        for district in db.session.scalars(sa.select(District).where(District.id.in_(missing_districts))):
            context.districts[district.id] = district
    missing_communities = {r.community_id for r in residents if r.community_id} - set(context.communities)
    if missing_communities:
        context.communities.update(
            db.session.execute(
                sa.select(Community.id, Community.name).where(Community.id.in_(missing_communities))
            ).all()
        )


# --- the civil-affairs feed ------------------------------------------------------------------
@dataclass
class FeedResult:
    """What a civil-affairs feed did: rows applied, rows naming nobody we know, rows left alone."""

    rows: int = 0
    matched: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    conflicting: list[dict[str, Any]] = field(default_factory=list)


class _Conflict(Exception):
    def __init__(self, reason: str, message_zh: str, message_en: str) -> None:
        super().__init__(message_en)
        self.reason, self.message_zh, self.message_en = reason, message_zh, message_en


def apply_civil_affairs_feed(stream: BinaryIO, *, source_name: str = "") -> FeedResult:
    """Apply a civil-affairs list (.xlsx, or .csv in UTF-8 with or without BOM) of deaths, moves
    out, and 低保/特困 grants and revocations, each with the date it took effect — possibly long
    before today. Officers (their district) and admin; other roles 403.

    Rows are matched by ID number through the blind index. Applied, each in its own SAVEPOINT:
    death → status `deceased` from the date; moved out → status `moved_out`; a grant → the
    category from the date; a revocation → the period held on the date ends the day before.
    Not applied, and reported: rows naming nobody registered (`unmatched`), and `conflicting`
    rows — a resident of another district, a status the resident already has, a later status
    entry that would override the change, a death after today or before birth, a grant
    overlapping a held period or to someone deceased or moved out, a revocation with nothing
    held. This is a feed, not an all-or-nothing import: the rest is applied.

    Each matched row carries `meals_after_effective_date`, the valid meals already recorded on or
    after the effective date (from the finder the meals domain registers), for the officer to see
    at once; the audit scan (DESIGN.md) is what turns such meals into flags.
    """
    scoping.require_role(*OFFICERS)
    sheet = _read_table(stream.read(), FEED_COLUMNS, csv_allowed=True)
    result = FeedResult(rows=len(sheet.rows))
    source = f"民政数据 {source_name}".strip()
    for row in sheet.rows:
        _apply_feed_row(row, result, source)
    return result


def _apply_feed_row(row: SheetRow, result: FeedResult, source: str) -> None:
    cells = row.values
    base: dict[str, Any] = {"row": row.number, "id_number_masked": None, "event": None, "effective_on": None}
    try:
        number = _id_number_cell(cells.get("id_number"))
        base["id_number_masked"] = mask_id_number(number)
        event_text = _text(cells.get("event"))
        event = _code_for(FEED_EVENTS, event_text) if event_text else None
        base["event"] = event or event_text
        effective_on = _date(cells.get("effective_on"))
        base["effective_on"] = effective_on
        if not number:
            raise _Conflict("invalid_row", "缺少证件号码", "The ID number is missing.")
        if event is None:
            raise _Conflict(
                "invalid_row",
                f"事件“{event_text or ''}”无法识别，应为：{_labels(FEED_EVENTS)}",
                f"Unknown event {event_text!r}; one of {_codes(FEED_EVENTS)}.",
            )
        if effective_on is None:
            raise _Conflict("invalid_row", "缺少生效日期", "The effective date is missing.")
    except _BadCell as bad:
        result.conflicting.append(
            {**base, "reason": "invalid_row", "message_zh": bad.message_zh, "message_en": bad.message_en}
        )
        return
    except _Conflict as conflict:
        result.conflicting.append(
            {**base, "reason": conflict.reason, "message_zh": conflict.message_zh, "message_en": conflict.message_en}
        )
        return
    loaded = (selectinload(Resident.status_changes), selectinload(Resident.categories))
    with scoping.unrestricted():  # matched city-wide, so a resident of another district is named as such
        found = resident_service.find_resident_by_id_number(number, options=loaded)
    if found is None:
        result.unmatched.append(base)
        return
    try:
        resident = resident_service.get_resident(found.id)  # the caller's scope decides
    except NotFound:
        result.conflicting.append(
            {
                **base,
                "reason": "out_of_scope",
                "message_zh": "该居民登记在其他区，不在您的辖区",
                "message_en": "The resident is registered in another district, outside your scope.",
            }
        )
        return
    note = _text(cells.get("note")) or ""
    try:
        with db.session.begin_nested():
            applied = _apply_event(resident, event, effective_on, note=note, source=f"{source} 第 {row.number} 行")
    except _Conflict as conflict:
        result.conflicting.append(
            {
                **base,
                "resident_id": resident.id,
                "name": resident.name,
                "reason": conflict.reason,
                "message_zh": conflict.message_zh,
                "message_en": conflict.message_en,
            }
        )
        return
    except CanteenError as error:
        result.conflicting.append(
            {
                **base,
                "resident_id": resident.id,
                "name": resident.name,
                "reason": error.code,
                "message_zh": GENERIC_ZH,
                "message_en": error.message,
            }
        )
        return
    result.matched.append(
        {
            "row": row.number,
            "resident_id": resident.id,
            "name": resident.name,
            "event": event,
            "effective_on": effective_on,
            "applied": applied,
            "meals_after_effective_date": _meals_on_or_after(resident.id, effective_on),
        }
    )


# The meals domain depends on residents, not the other way round: it registers how to list a
# resident's meals from a date (canteen.meals.service), and the feed asks through this.
MealFinder = Callable[[int, date], list[dict[str, Any]]]
_meal_finders: list[MealFinder] = []


def register_meal_finder(finder: MealFinder) -> MealFinder:
    """Register a function answering a resident's valid meals on or after a date, as dicts
    (`id`, `served_on`, `slot`, `canteen_name`, `subsidy_fen`). Usable as a decorator."""
    if finder not in _meal_finders:
        _meal_finders.append(finder)
    return finder


def _meals_on_or_after(resident_id: int, day: date) -> list[dict[str, Any]]:
    return [meal for finder in _meal_finders for meal in finder(resident_id, day)]


def _apply_event(resident: Resident, event: str, day: date, *, note: str, source: str) -> dict[str, Any]:
    reason = f"{source}：{label(FEED_EVENTS, event)}" + (f"；{note}" if note else "")
    if event in EVENT_STATUS:
        status = EVENT_STATUS[event]
        _refuse_status_conflict(resident, status, day)
        change = resident_service.set_status(
            resident.id, status=status, effective_on=day, reason=reason[:500], source=FEED_SOURCE
        )
        return {"kind": "status", "status": status, "effective_on": day, "record_id": change.id}
    category, action = EVENT_CATEGORY[event]
    if action == "grant":
        _refuse_grant_conflict(resident, category, day)
        entry = resident_service.add_category(
            resident.id, category=category, valid_from=day, evidence=reason[:500], source=FEED_SOURCE
        )
        return {"kind": "category_granted", "category": category, "valid_from": day, "record_id": entry.id}
    held = _period_to_revoke(resident, category, day)
    entry = resident_service.end_category(resident.id, held.id, valid_to=day - timedelta(days=1))
    return {"kind": "category_ended", "category": category, "valid_to": entry.valid_to, "record_id": entry.id}


def _refuse_status_conflict(resident: Resident, status: str, day: date) -> None:
    status_zh = label(STATUS_NAMES, status)
    if status == "deceased" and day > clock.today():
        raise _Conflict("impossible_date", "死亡日期晚于今天", "The date of death is after today.")
    if day < resident.birth_date:
        raise _Conflict("impossible_date", "生效日期早于出生日期", "The effective date is before the birth date.")
    current = resident_service.status_entry_on(resident, day)
    if current is not None and current.status == status and current.effective_on == day:
        raise _Conflict(
            "already_recorded",
            f"已登记过同一变更（{day} 起{status_zh}）",
            f"Already recorded: {status} from {day}.",
        )
    if current is not None and current.status in ("deceased", status):
        since = current.effective_on
        raise _Conflict(
            f"already_{current.status}",
            f"该居民已于 {since} 起登记为{label(STATUS_NAMES, current.status)}",
            f"Already recorded as {current.status} from {since}.",
        )
    later = sorted(
        (c for c in resident.status_changes if c.effective_on > day and c.status not in (status, "deceased")),
        key=lambda c: c.effective_on,
    )
    if later:
        first = later[0]
        raise _Conflict(
            "later_status_recorded",
            f"生效日期之后已有状态记录（{first.effective_on} 起{label(STATUS_NAMES, first.status)}），"
            "自动处理会被它覆盖，请人工核对",
            f"A later status entry ({first.status} from {first.effective_on}) would override this change; "
            "check by hand.",
        )


def _refuse_grant_conflict(resident: Resident, category: str, day: date) -> None:
    current = resident_service.status_entry_on(resident, day)
    if current is not None and current.status in ("deceased", "moved_out"):
        raise _Conflict(
            f"already_{current.status}",
            f"该居民已于 {current.effective_on} 起登记为{label(STATUS_NAMES, current.status)}，不予认定",
            f"The resident is {current.status} from {current.effective_on}; nothing granted.",
        )
    category_zh = label(CATEGORY_NAMES, category)
    for held in resident.categories:
        if held.category != category:
            continue
        if held.valid_from == day and held.valid_to is None:
            raise _Conflict(
                "already_recorded",
                f"已登记过同一认定（{day} 起{category_zh}）",
                f"Already recorded: {category} from {day}.",
            )
        if held.valid_to is None or held.valid_to >= day:  # the grant is open-ended
            period = f"{held.valid_from}~{held.valid_to or ''}"
            raise _Conflict(
                "category_overlap",
                f"与已有的{category_zh}记录（{period}）重叠",
                f"Overlaps the {category} period {period} already recorded.",
            )


def _period_to_revoke(resident: Resident, category: str, day: date) -> ResidentCategory:
    category_zh = label(CATEGORY_NAMES, category)
    periods = [c for c in resident.categories if c.category == category]
    held = next((c for c in periods if c.held_on(day)), None)
    if held is None:
        if any(c.valid_to == day - timedelta(days=1) for c in periods):
            raise _Conflict(
                "already_recorded",
                f"已登记过同一取消（{category_zh}至 {day - timedelta(days=1)}）",
                f"Already recorded: {category} ended on {day - timedelta(days=1)}.",
            )
        raise _Conflict(
            "no_open_category",
            f"该居民在 {day} 没有有效的{category_zh}记录，无从取消",
            f"The resident holds no {category} period on {day} to revoke.",
        )
    if held.valid_from >= day:
        raise _Conflict(
            "impossible_date",
            f"{category_zh}记录自 {held.valid_from} 起，取消日期须晚于开始日期",
            f"The {category} period starts on {held.valid_from}; a revocation must come after it.",
        )
    return held
