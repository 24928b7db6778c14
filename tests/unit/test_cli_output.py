"""Stored data (keys, OCR text, error details) is user input: printed, it must not drive the
terminal (colours, cursor moves, window titles, hyperlinks, bidi overrides)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from imgpipe.cli import display_width, escape_json, main, printable, table
from imgpipe.cli.demo import format_table, local_path
from imgpipe.cli.dlq import user_key
from tests.conftest import jpeg_bytes
from tests.harness.cli import IMGPIPE

HOSTILE = "a\x1b[31mred\x1b]0;pwned\x07\x9b2J\u202eexe.jpg\r\x00"


def _controls(text: str) -> list[str]:
    return [c for c in text if not c.isprintable() and c not in "\n"]


def test_printable_shows_controls_as_escapes() -> None:
    shown = printable(HOSTILE)
    assert _controls(shown) == []
    assert shown == "a\\x1b[31mred\\x1b]0;pwned\\x07\\x9b2J\\u202eexe.jpg\\r\\x00"
    assert printable("ünï cødé +%.jpg") == "ünï cødé +%.jpg"  # unicode itself is fine


def test_tables_escape_every_cell() -> None:
    out = table([("key", "status"), (HOSTILE, "DONE")])
    assert _controls(out) == [] and "DONE" in out


def test_json_output_escapes_controls_yet_reads_back_the_same() -> None:
    text = escape_json(json.dumps({"key": HOSTILE + "\U000e0001"}, ensure_ascii=False))
    assert _controls(text) == []
    assert json.loads(text) == {"key": HOSTILE + "\U000e0001"}


def test_a_file_name_with_escapes_is_printed_escaped(tmp_path: Path) -> None:
    photo = tmp_path / "x\x1b[2Jy.jpg"
    photo.write_bytes(jpeg_bytes())
    bad = tmp_path / "z\x1b]0;t\x07.jpg"
    bad.write_bytes(b"not an image")
    result = CliRunner().invoke(
        main, ["process", str(photo), str(bad), "--out", str(tmp_path / "out")]
    )
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "x\\x1b[2Jy.jpg" in result.output and "REJECTED" in result.output


def test_process_json_escapes_c1_controls_and_bidi_overrides(tmp_path: Path) -> None:
    photo = tmp_path / "invoice\u202egpj.exe\x9b2J.jpg"  # U+202E flips what follows
    photo.write_bytes(jpeg_bytes())
    result = CliRunner().invoke(
        main, ["process", str(photo), "--json", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert _controls(result.output) == []
    assert json.loads(result.output)["file"] == str(photo)


def test_the_demo_table_escapes_keys_and_found_text() -> None:
    from imgpipe.outcomes import Status
    from imgpipe.record import ImageRecord

    record = ImageRecord("u", HOSTILE, "s:1", Status.REJECTED, reason=None)
    out = format_table([HOSTILE, "pending\u202e.jpg"], {HOSTILE: record})
    assert _controls(out) == [] and "PENDING" in out


def test_demo_thumbnails_are_copied_inside_the_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    for key in (
        "thumbnails/../../../etc/cron.d/x/t/small.jpg",
        "thumbnails//etc/passwd/t/s.jpg",
        "thumbnails/a/./b/t/small.jpg",
    ):
        target = local_path(out, key)
        assert target.resolve().is_relative_to(out.resolve()), key
    assert (
        local_path(out, "thumbnails/trip/a b.jpg/t/small.jpg") == out / "trip/a b.jpg/t/small.jpg"
    )
    assert local_path(out, "thumbnails/../x/t/s.jpg") == out / "%2E%2E/x/t/s.jpg"


def test_tables_align_by_display_width() -> None:
    out = table(
        [("key", "status"), ("写真/猫.jpg", "DONE"), ("cafe\u0301.jpg", "DONE"), ("a", "X")]
    )
    _, rule, *rows = out.splitlines()
    # every status starts in the same terminal column: CJK takes two, a combining accent none
    columns = [display_width(row[: row.rindex(row.split()[-1])]) for row in rows]
    assert len(set(columns)) == 1 and columns[0] == display_width(rule.split()[0]) + 2


def test_one_key_format_in_dlq_ls_and_the_redrive_dry_run() -> None:
    assert user_key("imgpipe-uploads/trip/a b.jpg") == "trip/a b.jpg"
    assert user_key("no-slash") == "no-slash"


def test_a_closed_pipe_ends_the_command_quietly(corpus: Path, tmp_path: Path) -> None:
    """`imgpipe ... | head -1`: once the reader is gone, no traceback and no 'Error:' line."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        done = subprocess.run(
            [
                *(IMGPIPE, "process", str(corpus / "Landscape_1.jpg"), "--labels", "none"),
                *("--sizes", "s=32", "--out", str(tmp_path)),
            ],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")


def test_an_upload_still_pending_after_the_wait_says_where_it_is(stack: Any) -> None:
    """`upload --wait` that ran out of time: how many are in the DLQ, what the queue holds for
    the rest, and what to run next, instead of a bare PENDING."""
    from imgpipe.cli.images import where_pending
    from imgpipe.deployment import Access, Deployment
    from tests.harness.samples import Events

    queue = stack.sqs.create_queue(QueueName="images")["QueueUrl"]
    dlq = stack.sqs.create_queue(QueueName="images-dlq")["QueueUrl"]
    dep = Deployment(
        "local", "uploads", "derived", "images", "arn", queue, dlq, Access(None, "us-east-1")
    )
    stack.sqs.send_message(
        QueueUrl=dlq, MessageBody=Events().s3_body("trip/parked.jpg", etag="e", bucket="uploads")
    )
    stack.sqs.send_message(QueueUrl=queue, MessageBody="waiting")
    said = where_pending(dep, ["trip/parked.jpg", "trip/slow.jpg"], 300)
    assert said.startswith("2 still PENDING after 300 s: 1 in the DLQ (`imgpipe dlq ls`)")
    assert "1 queued or being retried (the images queue holds 1 waiting, 0 in flight)" in said
    assert "`imgpipe status KEY`" in said
