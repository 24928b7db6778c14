"""The CLI loads each command by name (click's LazyGroup pattern): no module registers anything
by being imported, and every listed command resolves to a command of that name."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest

from imgpipe.cli import LAZY_COMMANDS, main


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_each_command_loads_by_name(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert isinstance(command, click.Command) and command.name == name


def test_importing_the_command_modules_registers_nothing() -> None:
    for module in {target.partition(":")[0] for target in LAZY_COMMANDS.values()}:
        importlib.import_module(f"imgpipe.cli.{module}")
    assert main.commands == {}


def test_a_command_loads_its_own_module_only() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from imgpipe.cli import main; "
        "out = CliRunner().invoke(main, ['process', '--help']).output; "
        "print(sorted(m for m in sys.modules if m.startswith('imgpipe.cli.'))); print(out)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, _, text = out.stdout.partition("\n")
    assert loaded == "['imgpipe.cli.files', 'imgpipe.cli.offline']"  # offline and its helper
    assert "Usage: main process" in text or "process [OPTIONS]" in text
