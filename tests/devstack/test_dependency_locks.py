"""The supply chain: the dev/CI venv, checkov's venv and the layer `sam build` packs are installed from lock
files that pin every package with hashes, so a new release upstream cannot change what CI runs or what
deploys. These tests keep the lock files complete and in step with what declares the dependencies
(pyproject.toml, the *.in files, the template), and keep the Makefile installing only through them."""

import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devstack.paths import PROJECT_ROOT

DEV_LOCK = "requirements/dev.txt"
CHECKOV_LOCK = "requirements/checkov.txt"
LAYER_LOCK = "layers/crm/requirements.txt"
LAYER_INPUT = "layers/crm/requirements.in"
# What each lock is compiled from (besides pyproject.toml for the dev lock).
LOCK_INPUTS = {
    DEV_LOCK: [LAYER_INPUT, "requirements/tools.in"],
    CHECKOV_LOCK: ["requirements/checkov.in"],
    LAYER_LOCK: [LAYER_INPUT],
}
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: Marker | None
    hashes: int


def pins(lock: str) -> list[Pin]:
    """One entry per requirement of a lock file (its backslash-continued lines joined, comments dropped)."""
    text = (PROJECT_ROOT / lock).read_text(encoding="utf-8")
    logical_lines = re.sub(r"\\\n", " ", text).splitlines()
    found = []
    for line in logical_lines:
        requirement_text = line.split("#", 1)[0].strip()
        if not requirement_text:
            continue
        spec = requirement_text.split(" --hash", 1)[0].strip()
        requirement = Requirement(spec)
        pinned = [s.version for s in requirement.specifier if s.operator == "=="]
        assert len(pinned) == 1, f"{lock}: `{spec}` is not pinned with =="
        hashes = len(_HASH.findall(requirement_text))
        found.append(Pin(canonicalize_name(requirement.name), pinned[0], requirement.marker, hashes))
    return found


def declared(path: str) -> list[Requirement]:
    """The requirements a *.in file declares."""
    lines = (PROJECT_ROOT / path).read_text(encoding="utf-8").splitlines()
    return [Requirement(line.split("#", 1)[0]) for line in lines if line.split("#", 1)[0].strip()]


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


def make_output(*arguments: str) -> list[str]:
    """make's output lines (continued lines joined) for arguments that run nothing: a dry run or a query."""
    result = subprocess.run(
        ["make", "--no-print-directory", *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,  # `--question` exits 1 when a target is out of date; the output is what counts
    )
    assert result.stdout, result.stderr
    return result.stdout.replace("\\\n", " ").splitlines()


def make_dry_run(*arguments: str) -> list[list[str]]:
    """The commands make would run (expanded, not run), as the words of each simple shell command."""
    commands: list[list[str]] = [[]]
    for line in make_output("--dry-run", *arguments):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        for word in lexer:
            if word in {";", "&&", "||"}:
                commands.append([])
            else:
                commands[-1].append(word)
        commands.append([])
    return [words for words in commands if words]


def runs(words: list[str], program: str) -> bool:
    """Whether a command runs `program` (`pip install`, `sam build`...), after any VAR=value assignments."""
    command = " ".join(words)
    return f"{program} " in command or command.endswith(program)


@pytest.mark.parametrize("lock", list(LOCK_INPUTS))
def test_every_package_of_a_lock_is_pinned_with_its_hashes(lock):
    locked = pins(lock)

    assert len(locked) >= 15
    assert [p.name for p in locked if p.hashes == 0] == []


@pytest.mark.parametrize("lock", list(LOCK_INPUTS))
def test_every_declared_dependency_is_in_its_lock_at_an_allowed_version(lock):
    # A dependency added to pyproject.toml or a *.in file without `make lock` fails here, not in CI's install.
    wanted = [r for path in LOCK_INPUTS[lock] for r in declared(path)]
    if lock == DEV_LOCK:
        wanted += pyproject_requirements()
    locked = pins(lock)

    for requirement in wanted:
        versions = [p.version for p in locked if p.name == canonicalize_name(requirement.name)]
        assert versions, f"{requirement.name} is declared but not in {lock}: run `make lock`"
        outside = [v for v in versions if v not in requirement.specifier]
        assert outside == [], f"{lock}: {requirement.name} {outside}, not `{requirement}`: run `make lock`"


def test_the_dev_lock_pins_the_tools_that_install_and_lock_it():
    names = {p.name for p in pins(DEV_LOCK)}

    assert {"pip", "setuptools", "uv", "google-re2", "schemathesis", "aws-sam-cli", "moto"} <= names
    # checkov pins boto3 at a version aws-sam-cli cannot share: it lives in its own venv.
    assert "checkov" not in names
    assert "checkov" in {p.name for p in pins(CHECKOV_LOCK)}


def test_the_layer_packs_what_the_tests_ran():
    dev = {(p.name, p.version) for p in pins(DEV_LOCK)}
    layer = pins(LAYER_LOCK)

    assert [(p.name, p.version) for p in layer if (p.name, p.version) not in dev] == []
    assert [p.name for p in layer if p.marker is not None] == []  # one platform: no environment markers


def test_install_goes_through_the_locks_and_only_with_hashes():
    commands = make_dry_run("--always-make", "install")
    pip_installs = [words for words in commands if runs(words, "-m pip install")]

    locks_installed = sorted(words[words.index("-r") + 1] for words in pip_installs if "-r" in words)
    assert locks_installed == sorted([DEV_LOCK, CHECKOV_LOCK])
    for words in pip_installs:
        if "-r" in words:
            assert "--require-hashes" in words, words
        else:  # the project itself, whose dependencies the lock already installed
            assert words[-2:] == ["-e", "."], words
            assert "--no-deps" in words and "--no-build-isolation" in words, words


def test_sam_build_packs_only_layer_wheels_checked_against_the_lock():
    # sam build's own pip fetches the arm64 wheels by name==version without hashes: it must see no index.
    commands = make_dry_run("--always-make", "build")
    downloads = [words for words in commands if runs(words, "-m pip download")]
    (sam_build,) = [words for words in commands if runs(words, "/sam build")]

    assert len(downloads) == 2  # this machine's wheels (sam's pip resolves those first), then Lambda's
    for words in downloads:
        assert "--require-hashes" in words and words[words.index("-r") + 1] == LAYER_LOCK, words
    wheelhouse = downloads[0][downloads[0].index("-d") + 1]
    assert {"PIP_NO_INDEX=1", f"PIP_FIND_LINKS={PROJECT_ROOT / wheelhouse}"} <= set(sam_build)


def test_the_install_stamps_follow_the_locks():
    database = make_output("--print-data-base", "--question", "help")
    rules = dict(line.split(": ", 1) for line in database if line.startswith((".venv/", ".venv-checkov/")))

    assert DEV_LOCK in rules[".venv/.installed"].split()
    assert CHECKOV_LOCK in rules[".venv-checkov/.installed"].split()


def test_make_lock_writes_every_lock_with_hashes_and_the_layer_for_the_lambda_runtime():
    from samcli.yamlhelper import yaml_parse

    template = yaml_parse((PROJECT_ROOT / "template.yaml").read_text())
    layer_build = template["Resources"]["CrmLayer"]["Metadata"]
    compiles = {
        words[words.index("-o") + 1]: words for words in make_dry_run("lock") if runs(words, "pip compile")
    }

    assert set(compiles) == set(LOCK_INPUTS)
    assert all("--generate-hashes" in words for words in compiles.values())
    layer = compiles[LAYER_LOCK]
    runtime_version = layer_build["BuildMethod"].removeprefix("python")
    architecture = {"arm64": "aarch64", "x86_64": "x86_64"}[layer_build["BuildArchitecture"]]
    assert layer[layer.index("--python-version") + 1] == runtime_version
    assert layer[layer.index("--python-platform") + 1].startswith(f"{architecture}-manylinux")


def test_the_lock_files_say_how_to_refresh_them():
    for lock in LOCK_INPUTS:
        assert "#    make lock" in (PROJECT_ROOT / lock).read_text(encoding="utf-8")
