"""The CLI from any folder: the local stack's state is per user, errors say where they looked,
and an upload whose files would share a key stops before sending anything."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from imgpipe.cli import main
from imgpipe.local import endpoint


@pytest.fixture
def user_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No override: the platform's per-user directory, under a fake home."""
    monkeypatch.delenv(endpoint.STATE_DIR_ENV, raising=False)
    monkeypatch.delenv("LOCALSTACK_ENDPOINT", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
    elsewhere = tmp_path / "photos"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the checkout
    return tmp_path / "state-home" / "imgpipe"


def test_state_lives_in_the_users_state_directory(user_state: Path) -> None:
    assert endpoint.state_dir() == user_state


def test_the_override_still_wins(user_state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(endpoint.STATE_DIR_ENV, str(user_state.parent / "mine"))
    assert endpoint.state_dir() == user_state.parent / "mine"


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def test_a_stack_started_elsewhere_is_found_from_any_folder(
    user_state: Path, answering: str
) -> None:
    user_state.mkdir(parents=True)
    (user_state / "local.json").write_text(json.dumps({"url": answering, "kind": "ministack"}))
    found = endpoint.current()
    assert found is not None and found.url == answering


def test_no_stack_says_where_it_looked(user_state: Path) -> None:
    result = CliRunner().invoke(main, ["ls"])
    assert result.exit_code == 1
    assert "no local stack is running" in result.output
    assert str(user_state / "local.json") in result.output.replace("\n", "")
    assert "IMGPIPE_STATE_DIR" in result.output


def test_two_files_for_one_key_stop_the_upload_before_anything_is_sent(
    user_state: Path, tmp_path: Path
) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder / "docs").mkdir(parents=True)
        (tmp_path / folder / "docs" / "README").write_text(folder)
    (tmp_path / "a" / "only-here.jpg").write_text("x")
    result = CliRunner().invoke(main, ["upload", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 1
    out = result.output
    assert "nothing uploaded" in out and "docs/README" in out
    assert str(tmp_path / "a" / "docs" / "README") in out
    assert str(tmp_path / "b" / "docs" / "README") in out
    assert "only-here" not in out and "no local stack" not in out  # it never got that far


def test_a_folders_symbolic_links_are_not_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A link in a photo folder to ~/.aws/credentials (or to a whole other folder) is not
    uploaded or processed; each one is said."""
    from imgpipe.cli.files import files_under

    secrets = tmp_path / "home" / ".aws"
    secrets.mkdir(parents=True)
    (secrets / "credentials").write_text("[default]\naws_secret_access_key = x\n")
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    (photos / "trip" / "a.jpg").write_bytes(b"jpeg")
    (photos / "creds.jpg").symlink_to(secrets / "credentials")
    (photos / "home").symlink_to(tmp_path / "home", target_is_directory=True)
    found = files_under(photos)
    said = capsys.readouterr().err
    assert found == [photos / "trip" / "a.jpg"]
    assert f"skipped {photos / 'creds.jpg'}: a symbolic link" in said
    assert f"skipped {photos / 'home'}: a symbolic link" in said
