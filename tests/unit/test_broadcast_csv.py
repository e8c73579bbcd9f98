"""Reading a broadcast's CSV and checking its rows as the notifier will: no broker, no database."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from wanotify.consumers.notifier.planning import Catalog, RuleSpec
from wanotify.ops.admin.broadcast_csv import CheckedRow, CsvScan, InvalidRow, ScanReport, file_digest
from wanotify.ops.admin.broadcasts import BroadcastRequest, row_check, row_event_id, template_columns
from wanotify.ops.admin.errors import ActionRefused
from wanotify.shared.priority import Priority

KEY = "ab" * 32
TEMPLATE = "Halo {{ name }}, promo {{ code }} untuk Anda."


class Progress:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def start(self, phase: str, total: int) -> None:
        self.seen.append((phase, total))

    def update(self, done: int) -> None:
        self.seen.append(("update", done))


def check_digits(phone: str, variables: dict[str, str]) -> CheckedRow:
    """A stand-in for the notifier's check: a phone is valid when it is all digits."""
    if not phone.isdigit():
        raise InvalidRow(f"bad phone {phone}")
    return CheckedRow("+" + phone.lstrip("0"), f"hi {variables}", "id")


def scan(path: Path, required: frozenset[str] = frozenset(), check=check_digits) -> ScanReport:  # type: ignore[no-untyped-def]
    scanner = CsvScan(path, check, set(required))
    list(scanner.valid_rows())
    return scanner.report


def write(tmp_path: Path, content: str | bytes, name: str = "list.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def test_rows_are_sorted_into_valid_invalid_and_duplicates_with_their_lines(tmp_path):
    path = write(tmp_path, "phone,name\n0811,A\nxx,B\n0811,C\n0822,D,extra\n\n0833,E\n")
    report = scan(path)
    assert (report.rows, report.valid, report.invalid, report.duplicates) == (5, 2, 2, 1)
    assert report.invalid_rows == [{"line": 3, "reason": "bad phone xx"},
                                   {"line": 5, "reason": "has 3 fields; the header has 2"}]
    assert report.duplicate_rows == [{"line": 4, "same_phone_as_line": 2}]
    assert [p["line"] for p in report.previews] == [2, 7]


def test_a_row_without_a_phone_number_is_invalid_and_says_so(tmp_path):
    report = scan(write(tmp_path, "phone,name\n ,A\n"))
    assert report.invalid_rows == [{"line": 2, "reason": "has no phone number"}]


def test_only_three_rows_are_previewed(tmp_path):
    body = "phone,name\n" + "".join(f"08{i},N{i}\n" for i in range(10))
    assert len(scan(write(tmp_path, body)).previews) == 3


def test_a_quoted_field_over_several_lines_keeps_the_next_rows_line_numbers_true(tmp_path):
    report = scan(write(tmp_path, 'phone,name\n0811,"two\nlines"\nbad,X\n'))
    assert report.invalid_rows == [{"line": 4, "reason": "bad phone bad"}]


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8 + b"phone,name\n0811,Budi\n")
    report = scan(path)
    assert (report.columns, report.valid) == (["phone", "name"], 1)


def test_a_semicolon_separated_file_from_a_spreadsheet_is_read(tmp_path):
    report = scan(write(tmp_path, "Phone;name\n0811;Budi\n"))
    assert (report.columns, report.valid) == (["phone", "name"], 1)


def test_a_file_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    path = write(tmp_path, "phone,name\n0811,Budi\n0822,Andr\xe9\n".encode("latin-1"))
    with pytest.raises(ActionRefused, match=r"list.csv is not UTF-8 text: line 3 .* save the file as UTF-8"):
        scan(path)


def test_a_utf16_file_is_refused_as_utf16(tmp_path):
    path = write(tmp_path, "phone,name\n0811,Budi\n".encode("utf-16"))
    with pytest.raises(ActionRefused, match="is UTF-16 text, not UTF-8"):
        scan(path)


@pytest.mark.parametrize(("content", "message"), [
    ("", "list.csv is empty"),
    ("\n\n", "list.csv is empty"),
    ("nomor,name\n0811,A\n", "has no 'phone' column .*its header is nomor, name"),
    ("phone,name,Name\n0811,A,B\n", "names a column twice"),
    ("phone,name\n0811,A\n", "the template uses code, which list.csv has no column for"),
])
def test_a_file_that_cannot_be_a_broadcast_is_refused_with_what_to_do(tmp_path, content, message):
    with pytest.raises(ActionRefused, match=message):
        scan(write(tmp_path, content), frozenset({"name", "code"}) if "nomor" not in content else frozenset())


def test_a_missing_file_is_refused_with_its_path(tmp_path):
    with pytest.raises(ActionRefused, match="does not exist — check the path"):
        scan(tmp_path / "nope.csv")


def test_rows_are_streamed_one_at_a_time_not_read_all_first(tmp_path):
    checked: list[str] = []

    def check(phone: str, variables: dict[str, str]) -> CheckedRow:
        checked.append(phone)
        return check_digits(phone, variables)

    path = write(tmp_path, "phone,name\n" + "".join(f"08{i},N\n" for i in range(1000)))
    rows = CsvScan(path, check, set()).valid_rows()
    first = next(rows)
    assert (first.line, checked) == (2, ["080"])
    rows.close()


def test_reading_reports_progress_up_to_the_file_size(tmp_path):
    path = write(tmp_path, "phone,name\n" + "".join(f"08{i},N\n" for i in range(2000)))
    progress = Progress()
    list(CsvScan(path, check_digits, set(), progress, "queueing").valid_rows())
    size = path.stat().st_size
    assert progress.seen[0] == ("queueing", size) and progress.seen[-1] == ("update", size)
    assert len(progress.seen) > 3  # updates along the way, not only at the end


def test_the_key_changes_with_the_options_and_the_content_only():
    request = BroadcastRequest(Path("a.csv"), "promo")
    assert request.key_prefix() != BroadcastRequest(Path("a.csv"), "promo", Priority.NORMAL).key_prefix()
    assert request.key_prefix() != BroadcastRequest(Path("a.csv"), "promo", sender="b").key_prefix()
    assert request.key_prefix() == BroadcastRequest(Path("other.csv"), "promo").key_prefix()


def test_the_file_digest_covers_prefix_and_bytes(tmp_path):
    path = write(tmp_path, "phone\n0811\n")
    same = file_digest(path, b"x", Progress())
    assert same == file_digest(path, b"x", Progress()) != file_digest(path, b"y", Progress())
    path.write_text("phone\n0812\n")
    assert file_digest(path, b"x", Progress()) != same


def test_a_rows_event_id_depends_on_the_broadcast_and_the_number():
    assert row_event_id(KEY, "+628114040707") == row_event_id(KEY, "+628114040707")
    assert row_event_id(KEY, "+628114040707") != row_event_id(KEY, "+628114040708")
    assert row_event_id(KEY, "+628114040707") != row_event_id("cd" * 32, "+628114040707")


def test_the_columns_a_template_needs_leave_out_what_every_event_carries():
    assert template_columns("{{ name }} {{ amount | money }} {{ event_id }} {{ occurred_at }}") == {"name", "amount"}


def catalog(body: str = TEMPLATE) -> Catalog:
    return Catalog({"notification.requested": [RuleSpec(None, Priority.NORMAL)]}, {"promo": body})


def test_the_notifiers_check_normalises_the_phone_renders_the_text_and_derives_the_event_id():
    check = row_check(catalog(), "ID", KEY, BroadcastRequest(Path("a.csv"), "promo"))
    row = check("0811 4040 707", {"name": "Budi", "code": "X1"})
    assert row == CheckedRow("+628114040707", "Halo Budi, promo X1 untuk Anda.", row_event_id(KEY, "+628114040707"))


def test_the_notifiers_check_refuses_a_bad_number_and_a_template_that_cannot_render():
    check = row_check(catalog("{{ name }} {{ 1 / code|int }}"), "ID", KEY, BroadcastRequest(Path("a.csv"), "promo"))
    with pytest.raises(InvalidRow, match="not a valid phone number for region ID"):
        check("12", {"name": "A", "code": "1"})
    with pytest.raises(InvalidRow, match="template cannot render"):
        check("08114040707", {"name": "A", "code": "0"})
