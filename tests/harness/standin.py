"""`python -m tests.harness.standin PORT -- COMMAND...`: run COMMAND against a LocalStack stand-in.

LocalStack needs Docker, which CI here lacks. MiniStack started as LocalStack's community
edition behaves — on a fixed port, answering LocalStack's health route, **without** IAM
enforcement (no ``AUTH``) — stands in for it: COMMAND runs with ``LOCALSTACK_ENDPOINT`` pointing
at it (and the zip built for MiniStack's Python), and the stand-in is stopped afterwards, however
COMMAND ends. Exits with COMMAND's exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from imgpipe.local import endpoint


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_localstack/health", timeout=0.5):
            return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    port, command = int(argv[0]), argv[2:]
    url = f"http://localhost:{port}"
    if _healthy(url):
        print(f"something already answers on {url}: stop it first", file=sys.stderr)
        return 2
    executable = endpoint.ministack_executable()
    if executable is None:
        print("MiniStack is not installed: make install", file=sys.stderr)
        return 2
    workdir = tempfile.mkdtemp(prefix="imgpipe-standin-")
    key, secret = endpoint.aws_env_keys()
    server = subprocess.Popen(
        [str(executable)],
        env={
            **os.environ,
            "GATEWAY_PORT": str(port),
            "BIND_HOST": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "MINISTACK_REGION": endpoint.REGION,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "TMPDIR": workdir,
        },
        stdout=open(os.path.join(workdir, "standin.log"), "ab"),  # noqa: SIM115 - lives as long
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=workdir,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                print(f"the stand-in did not start; see {workdir}/standin.log", file=sys.stderr)
                return 1
            time.sleep(0.1)
        print(f"LocalStack stand-in (MiniStack, no IAM enforcement) on {url}", flush=True)
        env = {
            **os.environ,
            "LOCALSTACK_ENDPOINT": url,
            "IMGPIPE_ZIP_PYTHON": endpoint.venv_python(executable),
        }
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
