"""Reading a broadcast's CSV: one streaming pass that sorts rows into valid, invalid and duplicate.

The file may be far larger than memory allows twice over, so it is read row by row and only
what the report needs is kept: the phone numbers seen (to name a duplicate's earlier line),
the first invalid rows and three previews. Whether a row is valid is not decided here: the
caller passes a ``RowCheck`` (the broadcast service checks each row exactly as the notifier
will), so the reading rules are testable on their own.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from wanotify.ops.admin.errors import ActionRefused
from wanotify.shared.phone import mask_phone

PHONE_COLUMN = "phone"
# The report lists this many invalid and duplicate rows; the counts are always exact.
LISTED_AT_MOST = 1000
PREVIEWS = 3
DELIMITERS = ",;\t"  # spreadsheets save ';' or tabs in some locales
READ_CHUNK = 1 << 20


class InvalidRow(Exception):
    """A row the notifier would refuse, with the reason in words an admin can act on."""


@dataclass(frozen=True)
class CheckedRow:
    phone: str  # E.164
    text: str  # the rendered message
    event_id: str


# (raw phone, variables) -> the checked row, or InvalidRow.
RowCheck = Callable[[str, dict[str, str]], CheckedRow]


class Progress(Protocol):
    """Feedback for long work: a phase with a total, then how far it has got."""

    def start(self, phase: str, total: int) -> None: ...

    def update(self, done: int) -> None: ...


class NoProgress:
    def start(self, phase: str, total: int) -> None:
        pass

    def update(self, done: int) -> None:
        pass


@dataclass(frozen=True)
class ValidRow:
    line: int
    phone: str
    variables: dict[str, str]
    event_id: str


@dataclass
class ScanReport:
    """What the file holds, counted exactly; the listings are cut at ``LISTED_AT_MOST``."""

    columns: list[str] = field(default_factory=list)
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    invalid_rows: list[dict[str, Any]] = field(default_factory=list)
    duplicate_rows: list[dict[str, Any]] = field(default_factory=list)
    previews: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "valid": self.valid, "invalid": self.invalid, "duplicates": self.duplicates,
                "columns": self.columns, "invalid_rows": self.invalid_rows, "duplicate_rows": self.duplicate_rows,
                "previews": self.previews}


def file_digest(path: Path, prefix: bytes, progress: Progress) -> str:
    """SHA-256 of ``prefix`` and the file's bytes, read in chunks."""
    digest = hashlib.sha256(prefix)
    with _open_binary(path) as raw:
        progress.start("reading", _size(path))
        while chunk := raw.read(READ_CHUNK):
            digest.update(chunk)
            progress.update(raw.tell())
    return digest.hexdigest()


class CsvScan:
    """Iterating ``valid_rows()`` reads the file once and fills ``report``."""

    def __init__(self, path: Path, check: RowCheck, required: set[str], progress: Progress | None = None,
                 phase: str = "checking") -> None:
        self.path = path
        self._phase = phase
        self.report = ScanReport()
        self._check = check
        self._required = required
        self._progress = progress or NoProgress()
        self._first_line: dict[str, int] = {}  # E.164 -> the line that had it first
        self._lines_read = 0

    def valid_rows(self) -> Iterator[ValidRow]:
        with _open_binary(self.path) as raw:
            lines = self._decoded(raw)
            first = next(lines, "")
            if not first.strip():
                raise ActionRefused(f"{self.path.name} is empty — it needs a header line naming a '{PHONE_COLUMN}' "
                                    "column and the template's variables, then one row per recipient")
            dialect = _dialect(first)
            header = self._header(next(csv.reader([first], dialect)))
            self._progress.start(self._phase, _size(self.path))
            yield from self._records(csv.reader(lines, dialect), header)
            self._progress.update(_size(self.path))

    def _decoded(self, raw: io.BufferedReader) -> Iterator[str]:
        """The file's lines as text, each decoded on its own so a bad byte is named by its line."""
        for data in raw:
            self._lines_read += 1
            if self._lines_read == 1:
                _refuse_utf16(self.path, data)
                data = data.removeprefix(codecs.BOM_UTF8)
            elif self._lines_read % 500 == 0:
                self._progress.update(raw.tell())
            try:
                yield data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ActionRefused(f"{self.path.name} is not UTF-8 text: line {self._lines_read} has bytes that are "
                                    f"not UTF-8 ({exc.reason}) — save the file as UTF-8 (\"CSV UTF-8\" in a "
                                    "spreadsheet) and try again") from None

    def _records(self, reader: Iterator[list[str]], header: list[str]) -> Iterator[ValidRow]:
        ended = 1  # the header's line
        for fields in reader:
            line, ended = ended + 1, self._lines_read  # a quoted field may span lines: the record's first
            row = self._row(line, header, fields)
            if row is not None:
                yield row

    def _header(self, names: list[str]) -> list[str]:
        header = [name.strip() for name in names]
        lowered = [name.lower() for name in header]
        if PHONE_COLUMN not in lowered:
            raise ActionRefused(f"{self.path.name} has no '{PHONE_COLUMN}' column (its header is {', '.join(header)}) "
                                "— name the column of phone numbers 'phone' on the first line")
        repeated = sorted({name for name in lowered if lowered.count(name) > 1 or not name})
        if repeated:
            raise ActionRefused(f"{self.path.name}: the header names a column twice or leaves one unnamed "
                                f"({', '.join(repr(r) for r in repeated)}) — give each column one name")
        header[lowered.index(PHONE_COLUMN)] = PHONE_COLUMN
        missing = sorted(self._required - set(header))
        if missing:
            raise ActionRefused(f"the template uses {', '.join(missing)}, which {self.path.name} has no column for "
                                "— add those columns (or use another template)")
        self.report.columns = header
        return header

    def _row(self, line: int, header: list[str], fields: list[str]) -> ValidRow | None:
        if not fields:
            return None  # a blank line is no row
        self.report.rows += 1
        try:
            if len(fields) != len(header):
                raise InvalidRow(f"has {len(fields)} fields; the header has {len(header)}")
            values = dict(zip(header, fields, strict=True))
            phone = values.pop(PHONE_COLUMN).strip()
            if not phone:
                raise InvalidRow("has no phone number")
            checked = self._check(phone, values)
        except InvalidRow as exc:
            self._invalid(line, str(exc))
            return None
        earlier = self._first_line.setdefault(checked.phone, line)
        if earlier != line:
            self._duplicate(line, earlier)
            return None
        self.report.valid += 1
        if len(self.report.previews) < PREVIEWS:
            self.report.previews.append({"line": line, "phone": mask_phone(checked.phone), "text": checked.text})
        return ValidRow(line, checked.phone, values, checked.event_id)

    def _invalid(self, line: int, reason: str) -> None:
        self.report.invalid += 1
        if len(self.report.invalid_rows) < LISTED_AT_MOST:
            self.report.invalid_rows.append({"line": line, "reason": reason})

    def _duplicate(self, line: int, earlier: int) -> None:
        self.report.duplicates += 1
        if len(self.report.duplicate_rows) < LISTED_AT_MOST:
            self.report.duplicate_rows.append({"line": line, "same_phone_as_line": earlier})


def _dialect(header_line: str) -> type[csv.Dialect]:
    """Comma-separated unless the header clearly uses ';' or tabs instead."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","

    class Dialect(csv.excel):
        pass

    Dialect.delimiter = delimiter
    return Dialect


def _open_binary(path: Path) -> io.BufferedReader:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise ActionRefused(f"{path} does not exist — check the path to the CSV file") from None
    except IsADirectoryError:
        raise ActionRefused(f"{path} is a folder — give the path to the CSV file") from None
    except PermissionError:
        raise ActionRefused(f"{path} cannot be read (permission denied) — check the file's permissions") from None


def _size(path: Path) -> int:
    return path.stat().st_size



def _refuse_utf16(path: Path, first_line: bytes) -> None:
    if first_line.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ActionRefused(f"{path.name} is UTF-16 text, not UTF-8 — save it as UTF-8 (\"CSV UTF-8\" in a "
                            "spreadsheet) and try again")
