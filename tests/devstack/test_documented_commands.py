"""The local-stack commands a new user copies from the README and the startup banner work as written from
the repository root: the venv's interpreter (a bare `python` lacks the dependencies), real subcommands,
and `make token AS=<user>` for one demo user."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from devstack.cli import _banner, parser
from devstack.paths import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
_INVOCATION = re.compile(r"([^\s`(]*)python -m devstack\b([^`\n)]*)")


def banner() -> str:
    stack = SimpleNamespace(
        url="http://127.0.0.1:3000",
        template=SimpleNamespace(functions={"CaptureFunction": None}, routes=[]),
        startup_seconds=1.0,
        data=SimpleNamespace(root=Path(".devstack/data")),
    )
    return _banner(stack)


@pytest.mark.parametrize("text", [README, banner()], ids=["README", "banner"])
def test_every_devstack_command_uses_the_venvs_python(text: str) -> None:
    invocations = _INVOCATION.findall(text)

    assert invocations
    assert [prefix for prefix, _ in invocations if prefix != ".venv/bin/"] == []


def test_every_concrete_readme_command_is_a_real_subcommand() -> None:
    concrete = [
        arguments.strip()
        for _, arguments in _INVOCATION.findall(README)
        if arguments.strip() and not re.search(r"[<\[…]|--help", arguments)
    ]

    assert len(concrete) >= 5
    for arguments in concrete:
        parser().parse_args(shlex.split(arguments))  # SystemExit (usage error) fails the test


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ([], "token --role rep"),
        (["ROLE=manager"], "token --role manager"),
        (["AS=rep2"], "token --user rep2"),
    ],
)
def test_make_token_names_a_role_or_one_user(arguments: list[str], expected: str) -> None:
    # `make -n` prints the command without running it; USER and AS from the shell must not leak in.
    result = subprocess.run(
        ["make", "-n", "token", *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "USER": "someone", "AS": "as"},
    )

    assert result.stdout.strip().splitlines()[-1].endswith(f"-m devstack {expected}")
