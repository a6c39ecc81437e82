"""The documentation builds without a single warning, and its command-line reference cannot rot.

The docs are built once per test module, as CI builds them
(``python -m sphinx -W --keep-going -b html docs OUT``), into a temporary folder with a temporary
HOME; the checks then read the built HTML.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from assyst_nodes.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGE = ROOT / "assyst_nodes"

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Build:
    """What one Sphinx run left: its exit code, its output and the HTML folder."""

    returncode: int
    output: str
    html: Path


def _source_files() -> set[Path]:
    """Every file under docs/ except bytecode caches and build output."""
    return {
        path.relative_to(DOCS)
        for path in DOCS.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and "_build" not in path.parts
    }


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    root = tmp_path_factory.mktemp("docs")
    home = root / "home"
    home.mkdir()
    html = root / "html"
    env = {**os.environ, "HOME": str(home), "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    before = _source_files()
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(DOCS), str(html)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert _source_files() == before, "the docs build wrote files into docs/"
    return Build(done.returncode, done.stdout + done.stderr, html)


class _Sections(HTMLParser):
    """Title, text and ``<kbd>`` contents of every ``<section>`` of a page (nested ones too)."""

    def __init__(self) -> None:
        super().__init__()
        self.titles: list[str] = []
        self.text: list[list[str]] = []
        self.kbd: list[list[str]] = []
        self._open: list[int] = []
        self._title: int | None = None
        self._in_kbd = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self._open.append(len(self.titles))
            self.titles.append("")
            self.text.append([])
            self.kbd.append([])
        elif re.fullmatch(r"h[1-6]", tag) and self._open and not self.titles[self._open[-1]]:
            self._title = self._open[-1]
        elif tag == "kbd":
            self._in_kbd = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._open:
            self._open.pop()
        elif re.fullmatch(r"h[1-6]", tag):
            self._title = None
        elif tag == "kbd":
            self._in_kbd = False

    def handle_data(self, data: str) -> None:
        if self._title is not None:
            self.titles[self._title] += data.replace("\N{PILCROW SIGN}", "")
        for section in self._open:
            self.text[section].append(data)
            if self._in_kbd:
                self.kbd[section].append(data)

    def subcommand(self, name: str) -> int:
        """The section of subcommand ``name``, titled ``run`` or ``assyst-nodes run`` (the
        title depends on the sphinx-argparse version)."""
        titles = [" ".join(title.split()) for title in self.titles]
        for wanted in (f"assyst-nodes {name}", name):
            if wanted in titles:
                return titles.index(wanted)
        raise AssertionError(f"no section for subcommand {name!r} in cli.html: {titles}")


def _sections(page: Path) -> _Sections:
    parser = _Sections()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _names(action: argparse.Action) -> list[str]:
    """How the reference names an argument: its option strings, or a positional's name."""
    if action.option_strings:
        return list(action.option_strings)
    return [action.metavar if isinstance(action.metavar, str) else action.dest]


def _normalised(text: str) -> str:
    return " ".join(text.split())


def test_docs_build_with_sphinx_without_any_warning(build: Build) -> None:
    lines = build.output.splitlines()
    warnings = [line for line in lines if re.search(r"\b(WARNING|ERROR): ", line)]
    assert build.returncode == 0 and not warnings, build.output[-5000:]
    for page in ("index", "design", "metadata", "cli", "project", "cluster", "plots"):
        assert (build.html / f"{page}.html").is_file(), page


def test_cli_reference_lists_every_option_of_every_subcommand(build: Build) -> None:
    page = _sections(build.html / "cli.html")
    subcommands = _subcommands(build_parser())
    assert set(subcommands) >= {"run", "jobs", "history", "export"}
    for name, subparser in subcommands.items():
        section = page.subcommand(name)
        shown = {part.strip() for text in page.kbd[section] for part in text.split(",")}
        for action in subparser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            missing = set(_names(action)) - shown
            assert not missing, f"assyst-nodes {name}: {sorted(missing)} not in the CLI reference"


def test_cli_reference_shows_every_help_text_as_written(build: Build) -> None:
    """Help texts are written for a terminal: ``*.xyz`` or ``'--x'`` must not become markup."""
    page = _sections(build.html / "cli.html")
    for name, subparser in _subcommands(build_parser()).items():
        text = _normalised("".join(page.text[page.subcommand(name)]))
        for action in subparser._actions:
            if isinstance(action, argparse._HelpAction) or not action.help:
                continue
            if action.help == argparse.SUPPRESS or "%(" in action.help:
                continue  # hidden, or formatted differently by argparse and sphinx-argparse
            assert _normalised(action.help) in text, (name, action.help)


def test_api_reference_documents_every_module(build: Build) -> None:
    documented = set()
    for page in (build.html / "api").glob("*.html"):
        documented |= set(re.findall(r'id="module-([\w.]+)"', page.read_text(encoding="utf-8")))
    modules = {  # every module of every package (a package's own code is in __init__)
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in PACKAGE.rglob("*.py")
        if not path.stem.startswith("_")
    }
    assert len(modules) > 40
    assert modules <= documented, sorted(modules - documented)


def test_python_examples_in_the_pages_are_valid_python() -> None:
    blocks = 0
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for number, code in enumerate(re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)):
            compile(code, f"{page.relative_to(DOCS)} block {number}", "exec")
            blocks += 1
    assert blocks >= 10


def test_nodes_page_lists_every_input_and_output_of_the_macro() -> None:
    """Read from the macro's source (importing the node layer would take seconds)."""
    tree = ast.parse((PACKAGE / "nodes" / "macro.py").read_text(encoding="utf-8"))
    (macro,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "assyst"]
    (returned,) = [n for n in ast.walk(macro) if isinstance(n, ast.Return)]
    assert isinstance(returned.value, ast.Tuple)
    names = [a.arg for a in macro.args.args] + [
        e.id for e in returned.value.elts if isinstance(e, ast.Name)
    ]
    page = (DOCS / "nodes.md").read_text(encoding="utf-8")
    section = page[page.index("## The macro") :]
    missing = [name for name in names if f"`{name}`" not in section]
    assert not missing, f"docs/nodes.md does not describe macro inputs/outputs {missing}"


def test_notebooks_page_lists_every_notebook() -> None:
    page = (DOCS / "notebooks.md").read_text(encoding="utf-8")
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    missing = [p.name for p in notebooks if f"`notebooks/{p.name}`" not in page]
    assert not missing, f"docs/notebooks.md does not list {missing}"


def _commands_in_the_pages() -> list[tuple[str, list[str]]]:
    """Every ``assyst-nodes ...`` command of the README's and the docs' ``bash`` blocks (line
    continuations joined, comments dropped), as (page, arguments)."""
    import shlex

    found = []
    for page in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                for start, word in enumerate(words):
                    if word.endswith("assyst-nodes"):
                        found.append((page.name, words[start + 1 :]))
                        break
    return found


def test_every_command_the_pages_show_is_valid_for_the_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The narrative pages are written by hand: each command they show must parse, and a
    ``run`` must give valid settings (nothing runs)."""
    from assyst_nodes.cli.parser import settings_of
    from assyst_nodes.cli.settings import RunSettings

    monkeypatch.chdir(tmp_path)
    RunSettings().write("run.toml")  # what `--config run.toml` reads
    commands = _commands_in_the_pages()
    assert len(commands) >= 8
    for page, args in commands:
        try:
            parsed = build_parser().parse_args(args)
        except SystemExit:
            raise AssertionError(f"{page}: assyst-nodes {' '.join(args)} does not parse") from None
        if parsed.command == "run" and parsed.config is None:
            settings_of(parsed)  # a bad value raises, naming it
