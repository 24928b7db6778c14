"""Find or start an AWS-compatible endpoint on loopback: the local stack.

Order of preference: ``LOCALSTACK_ENDPOINT`` if set; the endpoint recorded by an earlier ``up``;
otherwise **MiniStack**, started as a background process on a free loopback port from the
project's ``.venv-ministack`` (``make install``). It runs the real Lambda zip through its own
SQS event source mapping, serves the HTTP API, and evaluates IAM (``AUTH=true``): each function
runs with its own role's credentials. LocalStack does the first two the same way; ``Kind`` and
``TRAITS`` below are the one place that says what differs between the two.

What was chosen is kept in the user's state directory (``local.json`` in the platform's one,
e.g. ``~/.local/state/imgpipe`` on Linux; ``IMGPIPE_STATE_DIR`` overrides) so that every
command (deploy, CLI, tests) uses the same endpoint, from whatever folder it runs in.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..deployment import Access, make_client
from .project import ProjectNotFound, project_dir

STATE_DIR_ENV = "IMGPIPE_STATE_DIR"
MINISTACK_ENV = "IMGPIPE_MINISTACK"  # the ministack executable, if not the project's
REGION = "us-east-1"
LAMBDA_PYTHON = "3.12"  # serverless.yml's runtime: what LocalStack's Lambda containers run
GUARD = "ministack_guard.py"  # beside this module: MiniStack for its owner only
HEALTH = "/_localstack/health"  # answered by MiniStack and LocalStack alike, to anyone


class Kind(StrEnum):
    MINISTACK = "ministack"  # started here, from the project's .venv-ministack
    LOCALSTACK = "localstack"  # LOCALSTACK_ENDPOINT


@dataclass(frozen=True, slots=True)
class Traits:
    """What differs between the endpoints. Both run the process function from their own SQS
    event source mapping, as AWS does: the CLI and the tests never poll the queue themselves."""

    # MiniStack (1.5) evaluates SQS batch calls under the batch operation's own IAM name
    # (sqs:DeleteMessageBatch), which IAM does not have: deploy grants those names locally.
    batch_action_names: bool
    # MiniStack runs functions on its own interpreter (the zip must be built for it); LocalStack
    # in its Lambda container images (the runtime's Python).
    zip_for_own_python: bool


TRAITS = {
    Kind.MINISTACK: Traits(batch_action_names=True, zip_for_own_python=True),
    Kind.LOCALSTACK: Traits(batch_action_names=False, zip_for_own_python=False),
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    kind: Kind
    pid: int = 0  # of the server process we started; 0 when we do not own it
    python: str = LAMBDA_PYTHON  # "3.11": the interpreter that runs the functions
    # the root secret: MiniStack we start takes only this run's (ministack_guard.py); a
    # LocalStack takes any, by convention "test"
    secret: str = "test"  # noqa: S105 (LocalStack's well-known dummy, not a secret)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Kind(self.kind))  # also from local.json's string

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].rstrip("/"))

    @property
    def traits(self) -> Traits:
        return TRAITS[self.kind]


def state_dir() -> Path:
    """Where the local stack's state lives: $IMGPIPE_STATE_DIR, else the platform's per-user
    state directory (XDG_STATE_HOME on Linux), so that `imgpipe` finds the stack from any
    folder, not only from the checkout it was deployed from."""
    explicit = os.environ.get(STATE_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser().resolve()
    from platformdirs import user_state_dir

    return Path(user_state_dir("imgpipe", appauthor=False))


def private_state_dir() -> Path:
    """``state_dir()``, created if need be and readable by its owner only: it holds the run's
    secret (``local.json``), the endpoint's log and each function's unpacked code and
    environment, none of which may help another local user find or use the stack."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if directory.stat().st_uid == os.getuid():
        directory.chmod(0o700)
    return directory


def where_looked() -> str:
    """For errors: where `current()` looked for a running stack."""
    places = [str(_state_file())]
    if os.environ.get("LOCALSTACK_ENDPOINT", "").strip():
        places.insert(0, f"LOCALSTACK_ENDPOINT={os.environ['LOCALSTACK_ENDPOINT']}")
    return " and ".join(places)


def _state_file() -> Path:
    return state_dir() / "local.json"


def _answers(url: str, path: str = "/", timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url + path, timeout=timeout):  # noqa: S310 (loopback only)
            return True
    except urllib.error.HTTPError:
        return True  # an HTTP error is still an HTTP server answering
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def current() -> Endpoint | None:
    """The endpoint in use, if one is recorded and still answering."""
    explicit = os.environ.get("LOCALSTACK_ENDPOINT", "").strip()
    if explicit:
        return Endpoint(explicit.rstrip("/"), Kind.LOCALSTACK, python=_zip_python_override())
    path = _state_file()
    if path.exists():
        try:
            ep = Endpoint(**json.loads(path.read_text()))
        except (TypeError, ValueError):  # unreadable, or a retired kind (moto): not in use
            return None
        # the health route, with time to answer: a stack busy with a burst of work is slow to
        # reply but still there (0.5 s made a busy one look gone); a stopped one refuses at once
        if (ep.pid == 0 or _pid_alive(ep.pid)) and _answers(ep.url, HEALTH, timeout=10):
            return ep
    return None


def ministack_executable() -> Path | None:
    """MiniStack's launcher: $IMGPIPE_MINISTACK, else the project's .venv-ministack (the
    checkout imgpipe runs from, wherever the command is typed; never a folder above the
    current one, where anyone could have planted one)."""
    explicit = os.environ.get(MINISTACK_ENV, "").strip()
    if explicit:
        return Path(explicit) if Path(explicit).exists() else None
    try:
        candidate = project_dir() / ".venv-ministack" / "bin" / "ministack"
    except ProjectNotFound:
        return None
    return candidate if candidate.exists() else None


def venv_python(executable: Path) -> str:
    """The Python version ("3.11") of the virtual environment ``executable`` lives in."""
    cfg = executable.resolve().parent.parent / "pyvenv.cfg"
    if cfg.exists():
        for line in cfg.read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip() in {"version", "version_info"}:
                return ".".join(value.strip().split(".")[:2])
    return LAMBDA_PYTHON


def _interpreter_of(executable: Path) -> str:
    """The Python a console script such as ``ministack`` runs on (its #! line)."""
    with executable.open("rb") as script:
        first = script.readline().decode(errors="replace").strip()
    if first.startswith("#!") and first[2:].split():
        return first[2:].split()[0]
    return str(executable.parent / "python")


def _zip_python_override() -> str:
    return os.environ.get("IMGPIPE_ZIP_PYTHON", "").strip() or LAMBDA_PYTHON


def up(timeout: float = 60.0) -> Endpoint:
    """Return the endpoint in use (LOCALSTACK_ENDPOINT, or the one recorded), or start MiniStack.
    Whatever merely answers on :4566 is not adopted: any local user can listen there."""
    found = current()
    if found is not None:
        return found
    ep = start_ministack(timeout)
    private_state_dir()
    # it holds the run's secret: the owner's alone (in a folder that is too)
    fd = os.open(_state_file(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as state:
        state.write(json.dumps(asdict(ep)))
    return ep


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MiniStackMissing(FileNotFoundError):
    pass


def start_ministack(
    timeout: float, *, port: int = 0, enforce_iam: bool = True, guarded: bool = True
) -> Endpoint:
    """MiniStack in the background on loopback (``port`` 0: a free one), behind its guard: only
    requests signed with a secret made for this run (or by the roles' sessions it issues) are
    served (``ministack_guard.py``). Without IAM enforcement it behaves as LocalStack's
    community edition, guard and all (``tests/harness/standin.py``): any secret. ``guarded``
    False: IAM without the guard, only to measure what the guard costs (``make bench-guard``)."""
    executable = ministack_executable()
    if executable is None:
        raise MiniStackMissing(
            "MiniStack is not installed: run `make install` in the imgpipe checkout (or set "
            f"{MINISTACK_ENV} to a ministack executable, or LOCALSTACK_ENDPOINT to a LocalStack)"
        )
    directory = private_state_dir()
    port = port or _free_port()
    secret = secrets.token_urlsafe(32) if enforce_iam else "test"
    command = [str(executable)]
    if enforce_iam and guarded:  # the launcher's own interpreter runs the guard, then MiniStack
        command = [_interpreter_of(executable), str(Path(__file__).with_name(GUARD))]
    log = (directory / "endpoint.log").open("ab")
    proc = subprocess.Popen(
        command,
        env={
            **os.environ,
            "GATEWAY_PORT": str(port),
            "BIND_HOST": "127.0.0.1",  # loopback only: never reachable from the network
            "AUTH": "true" if enforce_iam else "false",  # IAM on: functions run as their roles
            "LOG_LEVEL": "WARNING",
            "MINISTACK_REGION": REGION,
            # the root credentials our tools use (and what MiniStack treats as the admin)
            "AWS_ACCESS_KEY_ID": root_key(),
            "AWS_SECRET_ACCESS_KEY": secret,
            "TMPDIR": str(directory),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=directory,
        start_new_session=True,  # a process group: `down` stops its Lambda workers too
    )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"MiniStack exited with {proc.returncode}; see {log.name}")
        if _answers(url, HEALTH):
            return Endpoint(url, Kind.MINISTACK, proc.pid, venv_python(executable), secret)
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise TimeoutError(f"MiniStack did not answer within {timeout:.0f}s; see {log.name}")


def down() -> bool:
    """Stop the embedded endpoint if we started it. Returns whether one was stopped."""
    path = _state_file()
    if not path.exists():
        return False
    try:
        recorded = json.loads(path.read_text())
        ep = Endpoint(str(recorded["url"]), Kind.MINISTACK, int(recorded.get("pid") or 0))
    except (TypeError, ValueError, KeyError):
        ep = None
    path.unlink()
    return ep is not None and stop(ep)  # whatever kind was recorded, the process we started


def stop(ep: Endpoint) -> bool:
    """Stop ``ep`` and the Lambda workers it started, if we started it."""
    if ep.pid and _pid_alive(ep.pid):
        try:
            os.killpg(ep.pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        _wait_gone(ep.pid, 3.0)
        return True
    return False


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)


def root_key() -> str:
    """The local stack's root access key id (MiniStack treats it as its admin)."""
    return os.environ.get("IMGPIPE_LOCAL_KEY_ID", "test")


def aws_env(ep: Endpoint) -> dict[str, str]:
    """Environment for a process (boto3, the Serverless CLI) that must talk to ``ep``."""
    secret = ep.secret
    if ep.kind is Kind.LOCALSTACK:  # whatever that LocalStack was configured with
        secret = os.environ.get("IMGPIPE_LOCAL_SECRET", secret)
    return {
        "AWS_ENDPOINT_URL": ep.url,
        "AWS_ACCESS_KEY_ID": root_key(),
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "IMGPIPE_LOCAL_PORT": str(ep.port),
        "IMGPIPE_LOCAL_KIND": str(ep.kind),
    }


def access(ep: Endpoint) -> Access:
    env = aws_env(ep)
    return Access(ep.url, REGION, env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])


def client(ep: Endpoint, service: str) -> Any:
    """A boto3 client bound to ``ep`` regardless of the caller's environment (cached)."""
    return make_client(access(ep), service)
