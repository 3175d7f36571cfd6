"""The local-stack commands a new user copies from the README, the docs pages and the startup banner work as
written from the repository root: the venv's interpreter (a bare `python` lacks the dependencies), real
subcommands, real make targets, and `make token AS=<user>` for one demo user. Every relative link in those
pages points to a file that exists."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from devstack.cli import _banner, parser
from devstack.paths import PROJECT_ROOT

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
DOCUMENTED = {page.relative_to(PROJECT_ROOT).as_posix(): page.read_text(encoding="utf-8") for page in PAGES}
_INVOCATION = re.compile(r"([^\s`(]*)python -m devstack\b([^`\n)]*)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
# `make [-flags] target`, at the start of a code span or line, or after `(`, `;`, `&&`, `$(` or a blank.
_MAKE = re.compile(r"(?:^|[\s(;&])make((?:\s+-\w+)*)\s+([a-z][\w-]*)", re.MULTILINE)
_LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def banner() -> str:
    stack = SimpleNamespace(
        url="http://127.0.0.1:3000",
        template=SimpleNamespace(functions={"CaptureFunction": None}, routes=[]),
        startup_seconds=1.0,
        data=SimpleNamespace(root=Path(".devstack/data")),
    )
    return _banner(stack)


def code(text: str) -> list[str]:
    """The fenced blocks and inline code spans of a markdown page: where commands are written."""
    return _FENCE.findall(text) + _CODE_SPAN.findall(_FENCE.sub("", text))


def prose(text: str) -> str:
    """A markdown page without its code, so that `[x](y)` inside code is not taken for a link."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def test_the_readme_and_the_docs_pages_are_read() -> None:
    assert "README.md" in DOCUMENTED
    assert "docs/data-model.md" in DOCUMENTED
    assert len(DOCUMENTED) >= 8  # README and the docs pages it links


@pytest.mark.parametrize("text", [*DOCUMENTED.values(), banner()], ids=[*DOCUMENTED, "banner"])
def test_every_devstack_command_uses_the_venvs_python(text: str) -> None:
    invocations = _INVOCATION.findall(text)

    assert [prefix for prefix, _ in invocations if prefix != ".venv/bin/"] == []


@pytest.mark.parametrize("text", ["\n".join(DOCUMENTED.values()), banner()], ids=["pages", "banner"])
def test_devstack_commands_are_documented(text: str) -> None:
    assert _INVOCATION.findall(text)


def test_every_concrete_documented_command_is_a_real_subcommand() -> None:
    concrete = [
        (page, arguments.strip())
        for page, text in DOCUMENTED.items()
        for _, arguments in _INVOCATION.findall(text)
        if arguments.strip() and not re.search(r"[<\[…]|--help", arguments)
    ]

    assert len(concrete) >= 5
    for page, arguments in concrete:
        try:
            parser().parse_args(shlex.split(arguments))
        except SystemExit as usage_error:  # argparse's usage error
            pytest.fail(f"{page}: `python -m devstack {arguments}` is not a valid command ({usage_error})")


def test_every_documented_make_target_exists() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][\w-]*)\s*:(?!=)", makefile, re.MULTILINE))
    documented = {
        (page, target)
        for page, text in DOCUMENTED.items()
        for block in code(text)
        for _, target in _MAKE.findall(block)
    }

    assert {"dev", "test", "token", "redrive", "dev-reset"} <= {target for _, target in documented}
    assert sorted((page, target) for page, target in documented if target not in targets) == []


def test_every_relative_link_points_to_an_existing_file() -> None:
    links = [
        (page, target)
        for page, text in DOCUMENTED.items()
        for target in _LINK.findall(prose(text))
        if not re.match(r"[a-z][\w+.-]*:|#", target)  # skip https:, mailto: and in-page anchors
    ]

    assert any(target.startswith("docs/") for page, target in links if page == "README.md")
    broken = [
        (page, target)
        for page, target in links
        if not ((PROJECT_ROOT / page).parent / target.split("#")[0]).resolve().exists()
    ]
    assert broken == []


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
