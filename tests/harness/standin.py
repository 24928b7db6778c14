"""`python -m tests.harness.standin PORT -- COMMAND...`: run COMMAND against a LocalStack stand-in.

LocalStack needs Docker, which CI here lacks. MiniStack started as LocalStack's community
edition behaves — on a fixed port, answering LocalStack's health route, **without** IAM
enforcement — stands in for it: COMMAND runs with ``LOCALSTACK_ENDPOINT`` pointing at it (and
the zip built for MiniStack's Python), and the stand-in is stopped afterwards, however COMMAND
ends. Exits with COMMAND's exit code."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from imgpipe.local import endpoint


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    port, command = int(argv[0]), argv[2:]
    # its own state directory (logs): the stand-in is not the user's local stack
    users = os.environ.get(endpoint.STATE_DIR_ENV)
    os.environ[endpoint.STATE_DIR_ENV] = tempfile.mkdtemp(prefix="imgpipe-standin-")
    try:
        ep = endpoint.start_ministack(60, port=port, enforce_iam=False)
    except (OSError, RuntimeError) as exc:  # port taken, MiniStack missing or not starting
        print(f"the LocalStack stand-in did not start on :{port}: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"LocalStack stand-in (MiniStack, no IAM enforcement) on {ep.url}", flush=True)
        env = {**os.environ, "LOCALSTACK_ENDPOINT": ep.url, "IMGPIPE_ZIP_PYTHON": ep.python}
        env.pop(endpoint.STATE_DIR_ENV)  # COMMAND finds the stand-in by LOCALSTACK_ENDPOINT
        if users is not None:
            env[endpoint.STATE_DIR_ENV] = users
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        endpoint.stop(ep)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
