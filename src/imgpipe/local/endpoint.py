"""Find or start an AWS-compatible endpoint on loopback.

Order of preference: ``LOCALSTACK_ENDPOINT`` if set; a LocalStack answering on :4566; otherwise
the embedded moto server, started as a background process on a free port. What was chosen is
kept in ``.imgpipe/local.json`` so that every command (deploy, runner, CLI, tests) uses the same.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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
LOCALSTACK_DEFAULT = "http://localhost:4566"
REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    kind: str  # "moto" or "localstack"
    pid: int = 0  # of the moto process we started; 0 when we do not own it

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].rstrip("/"))


def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV, ".imgpipe")).resolve()


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
        if (ep.kind != "moto" or _pid_alive(ep.pid)) and _answers(ep.url):
            return ep
    return None


def up(timeout: float = 30.0) -> Endpoint:
    """Return the running endpoint or start the embedded one."""
    found = current()
    if found is not None:
        return found
    if _answers(LOCALSTACK_DEFAULT, "/_localstack/health"):
        ep = Endpoint(LOCALSTACK_DEFAULT, "localstack")
    else:
        ep = _start_moto(timeout)
    _state_file().parent.mkdir(parents=True, exist_ok=True)
    _state_file().write_text(json.dumps(asdict(ep)))
    return ep


def _start_moto(timeout: float) -> Endpoint:
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    port_file = directory / "moto.port"
    port_file.unlink(missing_ok=True)
    log = (directory / "endpoint.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgpipe.local.endpoint", "serve", "--port-file", str(port_file)],
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
    if ep.kind == "moto" and _pid_alive(ep.pid):
        os.kill(ep.pid, signal.SIGTERM)
        return True
    return False


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


def aws_env(ep: Endpoint) -> dict[str, str]:
    """Environment for a process (boto3, the Serverless CLI) that must talk to ``ep``."""
    return {
        "AWS_ENDPOINT_URL": ep.url,
        "AWS_ACCESS_KEY_ID": os.environ.get("IMGPIPE_LOCAL_KEY_ID", "test"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("IMGPIPE_LOCAL_SECRET", "test"),
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "IMGPIPE_LOCAL_PORT": str(ep.port),
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
