"""`imgpipe process`, driven through the click entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from PIL import Image, ImageChops

from imgpipe.cli import main
from tests.conftest import varied_photos


def test_process_writes_thumbnails_and_reports_json(corpus: Path, tmp_path: Path) -> None:
    junk = tmp_path / "notes.jpg"
    junk.write_text("not a photo")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["process", str(corpus / "Portrait_6.jpg"), str(junk), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output  # a REJECTED file is a result, not an error
    done, rejected = (json.loads(line) for line in result.output.splitlines())
    assert set(done) == {"file", "status", "reason", "metadata", "thumbnails", "labels", "ms"}
    assert done["status"] == "DONE" and done["reason"] is None
    assert done["metadata"]["orientation"] == 6 and done["metadata"]["width"] == 1200
    for thumb in done["thumbnails"]:
        with Image.open(thumb["path"]) as im:
            assert im.size == (thumb["width"], thumb["height"])
        assert Path(thumb["path"]).stat().st_size == thumb["bytes"]
    assert [(t["width"], t["height"]) for t in done["thumbnails"]] == [
        (85, 128),
        (341, 512),
        (683, 1024),
    ]
    # the offline labeler ran (installed with the local-ml extra): the corpus shows digits
    assert done["labels"]["backend"] == "local"
    assert (rejected["status"], rejected["reason"], rejected["thumbnails"]) == (
        "REJECTED",
        "not_an_image",
        [],
    )


def test_process_folder_human_output(corpus: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["process", str(corpus), "--out", str(tmp_path), "--sizes", "s=64"]
    )
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if line.startswith("DONE")]
    assert len(lines) == 18
    assert len(list(tmp_path.glob("*/s.jpg"))) == 18


def test_files_run_at_once_print_in_the_order_named_with_the_same_thumbnails(
    corpus: Path, tmp_path: Path
) -> None:
    # the same name from two folders, a REJECTED file among them, and the file named twice
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "Landscape_1.jpg").write_bytes((corpus / "Portrait_3.jpg").read_bytes())
    (twin / "zero.jpg").write_bytes(b"")
    named = [
        corpus / "Landscape_1.jpg",
        twin,
        corpus / "Portrait_8.jpg",
        corpus / "Landscape_1.jpg",
    ]
    runs = {}
    for jobs in ("1", "4"):
        out = tmp_path / f"out{jobs}"
        result = CliRunner().invoke(
            main,
            [
                *("process", *map(str, named), "--out", str(out), "--json"),
                *("--labels", "none", "--sizes", "s=64", "--jobs", jobs),
            ],
        )
        assert result.exit_code == 0, result.output
        lines = [json.loads(line) for line in result.output.splitlines()]
        runs[jobs] = lines
        files = [line["file"] for line in lines]
        assert files == [
            str(corpus / "Landscape_1.jpg"),
            str(twin / "Landscape_1.jpg"),
            str(twin / "zero.jpg"),
            str(corpus / "Portrait_8.jpg"),
            str(corpus / "Landscape_1.jpg"),
        ]
        assert [line["status"] for line in lines] == ["DONE", "DONE", "REJECTED", "DONE", "DONE"]
        paths = [t["path"] for line in lines for t in line["thumbnails"]]
        assert len(set(paths)) == 4  # nobody's thumbnail overwrote another's
        with Image.open(lines[1]["thumbnails"][0]["path"]) as im:
            assert im.height > im.width  # the portrait under the landscape's name kept its own
    strip = [
        [{k: v for k, v in line.items() if k not in ("ms", "thumbnails")} for line in run]
        for run in runs.values()
    ]
    assert strip[0] == strip[1]


def test_usage_errors_exit_non_zero(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["process", str(tmp_path / "missing.jpg")]).exit_code == 2
    bad = runner.invoke(main, ["process", str(tmp_path), "--sizes", "huge"])
    assert bad.exit_code == 2 and "--sizes" in bad.output


def test_python_dash_m_runs_the_same_command() -> None:
    """`python -m imgpipe.cli` is the same entry point as the `imgpipe` script."""
    out = subprocess.run(
        [sys.executable, "-m", "imgpipe.cli", "local", "run", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0 and "--port" in out.stdout


def test_processing_local_files_never_loads_the_aws_sdk(corpus: Path, tmp_path: Path) -> None:
    """A whole `imgpipe process` run, start-up included, is what users time: boto3 alone is
    ~200 ms of it, and nothing there talks to AWS."""
    photo = sorted(corpus.glob("*.jpg"))[0]
    code = (
        "import sys; from imgpipe.cli import main\n"
        f"main(['process', {str(photo)!r}, '--labels', 'none', '--out', {str(tmp_path)!r}],"
        " standalone_mode=False)\n"
        "sdk = ('boto3', 'botocore', 'aws_lambda_powertools')\n"
        "print(sorted(m for m in sdk if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_watermark_can_be_previewed_locally(corpus: Path, tmp_path: Path) -> None:
    photo = str(corpus / "Landscape_1.jpg")
    common = ["process", photo, "--labels", "none", "--json", "--sizes", "m=512"]
    plain = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "plain")])
    marked = CliRunner().invoke(
        main,
        [
            *common,
            *("--out", str(tmp_path / "marked"), "--watermark", "text:© Preview"),
            *("--watermark-position", "top-left", "--watermark-opacity", "1"),
        ],
    )
    assert plain.exit_code == marked.exit_code == 0, marked.output
    paths = [json.loads(r.output)["thumbnails"][0]["path"] for r in (plain, marked)]
    with Image.open(paths[0]) as a, Image.open(paths[1]) as b:
        diff = ImageChops.difference(a.convert("L"), b.convert("L")).point(
            lambda v: 255 if v > 40 else 0
        )
        box = diff.getbbox()
        assert box is not None and box[2] < a.width / 2 and box[3] < a.height / 2
    bad = CliRunner().invoke(main, [*common, "--watermark", str(tmp_path / "missing.png")])
    assert bad.exit_code == 2 and "--watermark" in bad.output


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k != "ms"}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def test_four_jobs_label_like_one(corpus: Path, tmp_path: Path) -> None:
    """The offline labeler from four threads at once: each run in its own process, since
    sharing a native model between threads used to abort it (exit 134) or invent faces."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, data in varied_photos(corpus).items():
        (photos / f"{Path(name).stem}.jpg").write_bytes(data)
    answers = {}
    for jobs in ("1", "4"):
        run = subprocess.run(
            [
                *(sys.executable, "-m", "imgpipe.cli", "process", str(photos)),
                *("--labels", "local", "--json", "--sizes", "s=64,l=1024"),
                *("--jobs", jobs, "--out", str(tmp_path / f"out{jobs}")),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        lines = [json.loads(line) for line in run.stdout.splitlines()]
        for line in lines:
            for thumb in line["thumbnails"]:
                thumb.pop("path")  # each run writes to its own folder
        answers[jobs] = _without_times(lines)
    assert len(answers["1"]) == len(list(photos.iterdir()))
    # every native detector had work: faces (dlib) and text (RapidOCR) were found
    assert any(line["labels"]["faces"] for line in answers["1"])
    assert any(line["labels"]["text"] for line in answers["1"])
    assert answers["4"] == answers["1"]
