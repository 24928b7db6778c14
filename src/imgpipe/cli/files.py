"""The files under a folder a user names, for `imgpipe upload` and `imgpipe process`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from . import printable


def files_under(folder: Path) -> list[Path]:
    """Every regular file below ``folder``, sorted, without following symbolic links: a link in
    a photo folder (to ``~/.aws/credentials``, or to ``/``) is not a photo of that folder.
    Each link passed over is said on stderr, so nothing is left out silently."""
    found: list[Path] = []
    links: list[Path] = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        here = Path(root)
        links += [here / d for d in dirs if (here / d).is_symlink()]
        for name in names:
            path = here / name
            if path.is_symlink():
                links.append(path)
            elif path.is_file():
                found.append(path)
    for link in sorted(links):
        click.echo(printable(f"skipped {link}: a symbolic link"), err=True)
    return sorted(found)
