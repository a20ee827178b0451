"""What README.md, docs/ and CONTRIBUTING.md tell a user to run works as written in a fresh clone.

Every indented command line is checked without training anything (the rest of the suite does that):
a Lightning command is parsed in full with its config files (``--print_config``: a removed option, a
misspelt key or a missing config fails); a tool's options go through the tool's own parser; scripts
and ``python -m`` modules exist and take the options given; repository files a command reads exist;
the install line pins the torch CI installs. The quick start's predict runs for real, and the tables
of shipped scores are what ``benchmarks/weights_table.py`` prints from the manifests.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from derain_zoo.cli import LIGHTNING_COMMANDS, TOOLS, main, run, tool_parser

REPO = Path(__file__).resolve().parents[1]
PAGES = [
    REPO / "README.md",
    REPO / "CONTRIBUTING.md",
    REPO / "benchmarks" / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
]
QUICK_START = "derain-zoo predict --model=s2vd --model.weights=official"
PLACEHOLDER = re.compile(r"<[^<>]*>")
ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


def commands(page: Path) -> list[list[str]]:
    """The commands of a page's indented code blocks, one argv each (``&&`` chains split, comments dropped).

    A ``<placeholder>`` stays one argument; ``VAR=value`` prefixes are dropped; lines that are not a
    command (equations, Python, printed tables) are skipped by their first word.
    """
    lines, found, pending = page.read_text().splitlines(), [], ""
    for line in lines:
        if not line.startswith("    ") or line.strip().startswith("#"):
            continue
        text = pending + line.strip()
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        text = PLACEHOLDER.sub(lambda m: m.group(0).replace(" ", "_"), text.split("  #")[0])
        for part in text.split("&&"):
            words = [word for word in part.split() if not ENV.match(word)]
            if words and words[0] in ("derain-zoo", "python", "python3", "pip"):
                found.append([arg for arg in shlex.split(part) if not ENV.match(arg)])
    return found


def _each_once() -> list[tuple[Path, list[str]]]:
    """Every command with the first page that shows it (several pages repeat the same line)."""
    seen: dict[str, tuple[Path, list[str]]] = {}
    for page in PAGES:
        for argv in commands(page):
            seen.setdefault(" ".join(argv), (page.relative_to(REPO), argv))
    return list(seen.values())


ALL = _each_once()


def _ids(case: tuple[Path, list[str]]) -> str:
    return f"{case[0]}: {' '.join(case[1])[:90]}"


def _repo_files(argv: list[str]) -> list[str]:
    """Values naming a file or folder the repository carries (configs/, data/, tests/), placeholders aside."""
    values = [arg.partition("=")[2] or arg for arg in argv[1:]]
    return [v for v in values if v.startswith(("configs/", "data/", "tests/")) and "<" not in v]


def test_the_pages_hold_the_commands_a_user_needs():
    readme = [argv[:2] for page, argv in ALL if page == Path("README.md")]
    for step in (["derain-zoo", "predict"], ["derain-zoo", "fit"], ["derain-zoo", "test"], ["derain-zoo", "benchmark"]):
        assert step in readme, f"README.md lost its '{' '.join(step)}' command"
    assert len(ALL) >= 30, f"only {len(ALL)} commands found: is the code-block format still 4-space indented?"


@pytest.mark.parametrize("case", [c for c in ALL if c[1][0] == "derain-zoo"], ids=_ids)
def test_every_derain_zoo_command_parses_as_written(case, monkeypatch):
    page, argv = case
    monkeypatch.chdir(REPO)  # as a user in a fresh clone types it
    for path in _repo_files(argv):
        assert (REPO / path).exists(), f"{page}: {path} does not exist"
    command = argv[1]
    if command in LIGHTNING_COMMANDS:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), pytest.raises(SystemExit) as stop:
            run([*argv[1:], "--print_config"])
        assert stop.value.code in (0, None), f"{page}: {' '.join(argv)}\n{stop.value.code}"
        assert "trainer:" in printed.getvalue()
    elif argv[1:] == ["weights"]:
        main(argv[1:])  # listing what ships is quick: run it
    elif command in TOOLS:
        _, parser = tool_parser(command)
        parser.parse_args(argv[2:])
    else:
        pytest.fail(f"{page}: '{command}' is not a derain-zoo command")


@pytest.mark.parametrize("case", [c for c in ALL if c[1][0].startswith("python")], ids=_ids)
def test_every_python_command_names_what_exists_with_options_it_takes(case):
    page, argv = case
    if argv[1:3] == ["-m", "venv"] or argv[1:3] == ["-m", "pytest"]:
        return  # the install line and the suite itself: the test below and this run check them
    for path in _repo_files(argv):
        assert (REPO / path).exists(), f"{page}: {path} does not exist"
    if argv[1] == "-m":
        assert importlib.util.find_spec(argv[2]) is not None, f"{page}: no module {argv[2]}"
        target = ["-m", argv[2]]
    else:
        assert (REPO / argv[1]).is_file(), f"{page}: no script {argv[1]}"
        target = [str(REPO / argv[1])]
    rest = argv[3:] if argv[1] == "-m" else argv[2:]
    options = {arg.partition("=")[0] for arg in rest if arg.startswith("--")}
    if options:
        # a sub-command word before the options (``weights export``) has its own --help
        words = [arg for arg in rest[: [a.startswith("--") for a in rest].index(True)] if arg.isalpha()]
        shown = _help(*target, *words)
        missing = [option for option in options if option not in shown]
        assert not missing, f"{page}: {' '.join(argv)} uses {missing}, which its --help does not list"


@functools.cache
def _help(*target: str) -> str:
    """The --help text of a script or module, one process per distinct target."""
    shown = subprocess.run([sys.executable, *target, "--help"], capture_output=True, text=True, cwd=REPO)
    assert shown.returncode == 0, shown.stderr[-2000:]
    return shown.stdout


def test_the_install_line_pins_the_torch_ci_installs():
    install = [argv for _, argv in ALL if argv[:2] == ["pip", "install"]]
    pins = {arg for argv in install for arg in argv if arg.startswith("torch==")}
    ci = re.findall(r"torch==[\w.+]+", (REPO / ".ci" / "run").read_text())
    assert pins and pins == set(ci), f"README installs {pins}, CI {ci}"
    assert ["pip", "install", "-e", ".[dev]"] in install and "dev = [" in (REPO / "pyproject.toml").read_text()


def test_the_tables_of_shipped_scores_are_what_the_manifests_say():
    script = runpy.run_path(str(REPO / "benchmarks" / "weights_table.py"))
    assert script["readme_table"]() in (REPO / "README.md").read_text(), (
        "README.md's table differs from the manifests: paste `python benchmarks/weights_table.py --readme`"
    )
    docs = (REPO / "docs" / "shipped-weights.md").read_text()
    for block in script["docs_tables"]().split("\n\n"):
        assert block in docs, "docs/shipped-weights.md differs: paste `python benchmarks/weights_table.py`"


@pytest.mark.slow
def test_the_quick_start_derains_the_real_clip_side_by_side(tmp_path, monkeypatch):
    argv = next(argv for page, argv in ALL if " ".join(argv).startswith(QUICK_START))
    output = tmp_path / next(arg.partition("=")[2] for arg in argv if arg.startswith("--output="))
    rewritten = [
        f"--data.input={REPO / arg.partition('=')[2]}" if arg.startswith("--data.input=") else arg for arg in argv
    ]
    monkeypatch.chdir(tmp_path)  # the run folder and the output land here, not in the repository
    main([*rewritten[1:], "--trainer.enable_progress_bar=false"])
    video = cv2.VideoCapture(str(output))
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = video.read()
    video.release()
    assert ok and frames == 16 and frame.shape == (480, 1280, 3)  # 16 frames of rain | derained, 640x480 each
