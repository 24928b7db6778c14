"""Find or start an AWS-compatible endpoint on loopback.

Order of preference: ``LOCALSTACK_ENDPOINT`` if set; a LocalStack answering on :4566; otherwise an
embedded backend started as a background process on a free loopback port:

- **MiniStack** (default where it is installed: ``make install`` puts it in ``.venv-ministack``,
  on Python 3.12 like Lambda's runtime). It runs the real Lambda zip through its own SQS event
  source mapping, serves the HTTP API, and evaluates IAM (``AUTH=true``): each function runs
  with its own role's credentials.
- **moto** (the fallback, or ``IMGPIPE_BACKEND=moto``): S3, SQS, DynamoDB, SNS and
  CloudFormation only; ``local/runner.py`` plays the event source mapping and ``local/wire.py``
  applies what its CloudFormation ignores.

What was chosen is kept in the user's state directory (``local.json`` in the platform's one,
e.g. ``~/.local/state/imgpipe`` on Linux; ``IMGPIPE_STATE_DIR`` overrides) so that every
command (deploy, CLI, tests) uses the same endpoint, from whatever folder it runs in.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..deployment import Access, make_client

STATE_DIR_ENV = "IMGPIPE_STATE_DIR"
BACKEND_ENV = "IMGPIPE_BACKEND"  # auto (default), ministack or moto
MINISTACK_ENV = "IMGPIPE_MINISTACK"  # the ministack executable, if not in .venv-ministack
LOCALSTACK_DEFAULT = "http://localhost:4566"
REGION = "us-east-1"
BACKENDS = ("auto", "ministack", "moto")


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    kind: str  # "ministack", "moto" or "localstack"
    pid: int = 0  # of the server process we started; 0 when we do not own it

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].rstrip("/"))


def state_dir() -> Path:
    """Where the local stack's state lives: $IMGPIPE_STATE_DIR, else the platform's per-user
    state directory (XDG_STATE_HOME on Linux), so that `imgpipe` finds the stack from any
    folder, not only from the checkout it was deployed from."""
    explicit = os.environ.get(STATE_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser().resolve()
    from platformdirs import user_state_dir

    return Path(user_state_dir("imgpipe", appauthor=False))


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
        return Endpoint(explicit.rstrip("/"), "localstack")
    path = _state_file()
    if path.exists():
        data = json.loads(path.read_text())
        ep = Endpoint(**data)
        if (ep.pid == 0 or _pid_alive(ep.pid)) and _answers(ep.url):
            return ep
    return None


def ministack_executable() -> Path | None:
    """MiniStack's launcher: $IMGPIPE_MINISTACK, else .venv-ministack/bin/ministack in the
    project (found from the current directory up)."""
    explicit = os.environ.get(MINISTACK_ENV, "").strip()
    if explicit:
        return Path(explicit) if Path(explicit).exists() else None
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder / ".venv-ministack" / "bin" / "ministack"
        if candidate.exists():
            return candidate
    return None


def choose_backend(requested: str | None = None) -> tuple[str, str]:
    """(backend, why): the one asked for (flag, then $IMGPIPE_BACKEND), else MiniStack where it is
    installed, else moto. Asking for MiniStack where it is missing is an error that says how to
    install it."""
    wanted = (requested or os.environ.get(BACKEND_ENV, "") or "auto").strip().lower()
    if wanted not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV} must be one of {', '.join(BACKENDS)}, got {wanted!r}")
    if wanted == "moto":
        return "moto", "asked for"
    if ministack_executable() is not None:
        return "ministack", "asked for" if wanted == "ministack" else "installed"
    hint = "run `make install` (needs Python 3.12) or set IMGPIPE_MINISTACK"
    if wanted == "ministack":
        raise FileNotFoundError(f"MiniStack is not installed: {hint}")
    return "moto", f"MiniStack is not installed ({hint}); using moto and the local runner"


def up(timeout: float = 60.0, backend: str | None = None, say: Any = None) -> Endpoint:
    """Return the running endpoint or start an embedded one (see ``choose_backend``)."""
    found = current()
    if found is not None:
        return found
    if _answers(LOCALSTACK_DEFAULT, "/_localstack/health"):
        ep = Endpoint(LOCALSTACK_DEFAULT, "localstack")
    else:
        kind, why = choose_backend(backend)
        if say is not None and why not in {"asked for", "installed"}:
            say(why)
        ep = _start_ministack(timeout) if kind == "ministack" else _start_moto(timeout)
    _state_file().parent.mkdir(parents=True, exist_ok=True)
    _state_file().write_text(json.dumps(asdict(ep)))
    return ep


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_ministack(timeout: float) -> Endpoint:
    executable = ministack_executable()
    assert executable is not None
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = (directory / "endpoint.log").open("ab")
    proc = subprocess.Popen(
        [str(executable)],
        env={
            **os.environ,
            "GATEWAY_PORT": str(port),
            "BIND_HOST": "127.0.0.1",  # loopback only: never reachable from the network
            "AUTH": "true",  # evaluate IAM: each function runs as its own role
            "LOG_LEVEL": "WARNING",
            "MINISTACK_REGION": REGION,
            # the root credentials our tools use (and what MiniStack treats as the admin)
            "AWS_ACCESS_KEY_ID": aws_env_keys()[0],
            "AWS_SECRET_ACCESS_KEY": aws_env_keys()[1],
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
        if _answers(url, "/_localstack/health"):
            return Endpoint(url, "ministack", proc.pid)
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise TimeoutError(f"MiniStack did not answer within {timeout:.0f}s; see {log.name}")


def _start_moto(timeout: float) -> Endpoint:
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    port_file = directory / "moto.port"
    port_file.unlink(missing_ok=True)
    log = (directory / "endpoint.log").open("ab")
    # moto answers every origin's cross-site requests by default: any web page open on this
    # machine could then create queues or reset the state (/moto-api/reset).
    env = {**os.environ, "MOTO_DISABLE_GLOBAL_CORS": "true"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgpipe.local.endpoint", "serve", "--port-file", str(port_file)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # outlives the command that started it, like a service
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}; see {log.name}")
        if port_file.exists() and port_file.read_text().strip():
            url = f"http://localhost:{int(port_file.read_text())}"
            if _answers(url):
                return Endpoint(url, "moto", proc.pid)
        time.sleep(0.1)
    proc.kill()
    raise TimeoutError(f"moto server did not answer within {timeout:.0f}s; see {log.name}")


def down() -> bool:
    """Stop the embedded endpoint if we started it. Returns whether one was stopped."""
    path = _state_file()
    if not path.exists():
        return False
    ep = Endpoint(**json.loads(path.read_text()))
    path.unlink()
    if ep.kind in {"moto", "ministack"} and _pid_alive(ep.pid):
        try:
            os.killpg(ep.pid, signal.SIGTERM)  # the server and the Lambda workers it started
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


def serve(port: int, port_file: Path | None) -> None:
    """Run moto's server in the foreground until SIGTERM."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    bound = server.get_host_and_port()[1]
    if port_file is not None:
        port_file.write_text(str(bound))
    print(f"moto server on http://localhost:{bound}", flush=True)
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stopping:
        time.sleep(0.2)
    server.stop()


def aws_env_keys() -> tuple[str, str]:
    """The local stack's root credentials (MiniStack and moto accept any; these are its admin)."""
    return (
        os.environ.get("IMGPIPE_LOCAL_KEY_ID", "test"),
        os.environ.get("IMGPIPE_LOCAL_SECRET", "test"),
    )


def aws_env(ep: Endpoint) -> dict[str, str]:
    """Environment for a process (boto3, the Serverless CLI) that must talk to ``ep``."""
    key, secret = aws_env_keys()
    return {
        "AWS_ENDPOINT_URL": ep.url,
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "IMGPIPE_LOCAL_PORT": str(ep.port),
        "IMGPIPE_LOCAL_KIND": ep.kind,
    }


def access(ep: Endpoint) -> Access:
    env = aws_env(ep)
    return Access(ep.url, REGION, env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])


def client(ep: Endpoint, service: str) -> Any:
    """A boto3 client bound to ``ep`` regardless of the caller's environment (cached)."""
    return make_client(access(ep), service)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m imgpipe.local.endpoint")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run moto's server in the foreground")
    p_serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p_serve.add_argument("--port-file", type=Path, help="write the bound port here")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.port, args.port_file)


if __name__ == "__main__":
    main()
