"""Issue files: find them, load them with a line for every field.

``load_issue(path)`` reads YAML keeping each node's line, validates with the pydantic
models and raises :class:`IssueFileError` listing *every* problem as
``path:line: field.path: message``. The warnings for a valid issue are
:mod:`.lint`'s; the next issue's file is :mod:`.scaffold`'s.
"""

from __future__ import annotations

import difflib
import itertools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from newsletter.compose.linebreak import joins_without_space
from newsletter.compose.models import Footer, Hero, Issue, Story
from newsletter.errors import IssueFileError, Problem

if TYPE_CHECKING:
    from newsletter.config import Settings

Path_ = tuple[str | int, ...]
ISSUE_NAME = re.compile(r"^vol-\d+\.\d+$")
_KNOWN_FIELDS = sorted(
    {*Issue.model_fields, *Hero.model_fields, *Story.model_fields, *Footer.model_fields}
)


# Finding issue files ----------------------------------------------------------------
def list_issue_files(issues_dir: Path) -> list[Path]:
    """Issue files sorted by volume (2.9 before 2.10)."""
    files = [p for p in issues_dir.glob("vol-*.yaml") if ISSUE_NAME.match(p.stem)]
    return sorted(files, key=lambda p: tuple(int(x) for x in p.stem[4:].split(".")))


def resolve_issue_path(name_or_path: str, settings: Settings) -> Path:
    """``vol-2.19`` -> ``issues/vol-2.19.yaml``; a path is taken as it is."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or len(candidate.parts) > 1:
        if candidate.is_file():
            return candidate
        raise IssueFileError([Problem(str(candidate), None, "", "no such issue file")])
    name = name_or_path if name_or_path.startswith("vol-") else f"vol-{name_or_path}"
    path = settings.issues_dir / f"{name}.yaml"
    if path.is_file():
        return path
    known = [p.stem for p in list_issue_files(settings.issues_dir)]
    hint = f"issues here: {', '.join(known)}" if known else f"no issues in {settings.issues_dir}/"
    raise IssueFileError(
        [Problem(str(path), None, "", f"no issue named {name_or_path!r}")], hint=hint
    )


# Loading ----------------------------------------------------------------------------
#: A list item is named as a person counts it: ("stories", 3, "detail") is "story 4 detail".
_ITEM_NAMES = {"stories": "story"}


def format_path(path: Path_) -> str:
    out = ""
    for i, part in enumerate(path):
        if isinstance(part, int):
            parent = path[i - 1] if i else ""
            name = _ITEM_NAMES.get(str(parent))
            if name and out.endswith(str(parent)):
                out = out[: -len(str(parent))] + f"{name} {part + 1}"
            else:
                out += f"[{part + 1}]"
        elif out.endswith(("]",)) or (out and not out[-1].isdigit()):
            out += f".{part}"
        elif out:
            out += f" {part}"
        else:
            out = part
    return out


class _Composer:
    """Turn a composed YAML node tree into plain data, remembering each path's line."""

    def __init__(self, display: str, text: str = "") -> None:
        self.display = display
        self.text = text
        self.lines: dict[Path_, int] = {}
        self.spans: dict[Path_, tuple[int, int]] = {}
        self.problems: list[Problem] = []
        self._ctor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        self.spans[path] = (node.start_mark.index, node.end_mark.index)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(self._scalar(key_node)) if isinstance(key_node, yaml.ScalarNode) else "?"
                line = key_node.start_mark.line + 1
                if key in result:
                    first = self.lines.get((*path, key))
                    self.problems.append(
                        Problem(
                            self.display,
                            line,
                            format_path((*path, key)),
                            f"duplicate key (first written on line {first})",
                        )
                    )
                    continue
                self.lines[(*path, key)] = line
                result[key] = self.build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self._scalar(node)
        if isinstance(value, str) and isinstance(node, yaml.ScalarNode) and node.style != "|":
            source = self.text[node.start_mark.index : node.end_mark.index]
            if "\n" in source:
                value = refold_cjk(value, source, block=node.style == ">")
        return value

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == "tag:yaml.org,2002:float":
            return node.value  # keep "2.10" as written; a float would make it 2.1
        try:
            return self._ctor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError):
            return node.value  # e.g. 2023-02-30: let validation say "not a date"


def refold_cjk(value: str, source: str, *, block: bool) -> str:
    """Undo YAML's folding of a line break into a space between two CJK characters.

    YAML folds every line break of a plain, quoted or ``>`` scalar into a space, which
    splits a Japanese sentence (「方針を 国会で」). ``source`` is the scalar as written;
    at each junction of two of its lines whose characters join without a space
    (:func:`~newsletter.compose.linebreak.joins_without_space`) the folded space is
    taken out again, searching forward so each junction is matched once, in order.
    """
    lines = [line.strip() for line in source.split("\n")]
    if block:
        lines = lines[1:]  # the ">-" indicator line
    out = value
    cursor = 0
    for before, after in itertools.pairwise(lines):
        if not before or not after or before.endswith("\\"):
            continue  # a blank line is a paragraph break; "\" escapes the break itself
        # look through Markdown emphasis marks: "会談した。**" + "両氏は" joins too
        tail = before[len(before.rstrip("*_")) - 1 :]
        head = after[: len(after) - len(after.lstrip("*_")) + 1]
        if not (tail.strip("*_") and head.strip("*_")):
            continue
        if not joins_without_space(tail.strip("*_"), head.strip("*_")):
            continue
        found = out.find(f"{tail} {head}", cursor)
        if found < 0:
            continue
        space = found + len(tail)
        out = out[:space] + out[space + 1 :]
        cursor = space
    return out


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IssueFileError(
            [Problem(str(path), None, "", f"cannot read: {exc.strerror}")]
        ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IssueFileError(
            [Problem(str(path), line, "", "not UTF-8 text (save the file as UTF-8)")]
        ) from None


_SYNTAX_HELP = (
    (
        "expected <block end>",
        "a line does not line up with the ones above it, or a quote is not closed",
    ),
    ("mapping values are not allowed", "a value contains ': ' — put the whole value in quotes"),
    (
        "cannot start any token",
        "a tab or special character: indent with spaces and quote "
        "values that start with @, `, %, | or >",
    ),
    ("while scanning a quoted scalar", "a quoted value is not closed"),
    ("expected the node content", "a value or bracket is missing"),
)


def _syntax_problem(exc: yaml.MarkedYAMLError, display: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    raw = f"{exc.context or ''} {exc.problem or ''}"
    explanation = next((help_ for key, help_ in _SYNTAX_HELP if key in raw), None)
    message = f"YAML syntax: {explanation or exc.problem or 'invalid YAML'}"
    if exc.context_mark is not None and mark is not None and exc.context_mark.line != mark.line:
        message += f" (in the block that starts on line {exc.context_mark.line + 1})"
    return Problem(display, line, "", message)


def parse_issue_text(text: str, display: str) -> Issue:
    """Validate issue YAML given as text; ``display`` names it in messages."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise IssueFileError([_syntax_problem(exc, display)]) from None
    except yaml.YAMLError as exc:
        raise IssueFileError([Problem(display, None, "", f"YAML syntax: {exc}")]) from None
    finally:
        loader.dispose()
    if root is None:
        raise IssueFileError([Problem(display, 1, "", "the file is empty")])
    composer = _Composer(display, text)
    data = composer.build(root, ())
    problems = list(composer.problems)
    if not isinstance(data, dict):
        problems.append(
            Problem(display, 1, "", "expected a mapping of keys (series:, volume:, ...)")
        )
        raise IssueFileError(problems)
    try:
        issue = Issue.model_validate(data)
    except ValidationError as exc:
        problems.extend(_explain(exc, composer, text, display))
    if problems:
        problems.sort(key=lambda p: p.line or 0)
        raise IssueFileError(problems)
    issue._lines = composer.lines
    issue._spans = composer.spans
    issue._text = text
    issue._source = display
    return issue


def load_issue(path: Path) -> Issue:
    """Load and validate an issue file; raise IssueFileError with every problem.

    A file named like an issue (vol-2.19.yaml) must hold that volume: the name is what
    `send`, the journal and the archive's page (the view-in-browser link) go by.
    """
    issue = parse_issue_text(_read_text(path), str(path))
    if ISSUE_NAME.match(path.stem) and path.stem != issue.slug:
        raise IssueFileError(
            [
                Problem(
                    str(path),
                    issue.line_of("volume"),
                    "volume",
                    f"volume {issue.volume!r} does not match the file name {path.name!r}",
                )
            ],
            hint=f"rename the file to {issue.slug}.yaml or fix the volume",
        )
    return issue


def _line_for(lines: dict[Path_, int], loc: Path_) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def line_within(
    text: str, span: tuple[int, int] | None, needle: str, default: int | None
) -> int | None:
    """The line where ``needle`` first appears inside a node's span (block scalars)."""
    if span is None or not needle:
        return default
    start, end = span
    # the needle's spaces may be folded across lines in the YAML source
    pattern = r"\s+".join(re.escape(part) for part in needle.split())
    found = re.compile(pattern).search(text, start, end)
    if found is None:
        return default
    return text.count("\n", 0, found.start()) + 1


_QUOTED = re.compile(r"'([^']*)'")


def _explain(exc: ValidationError, composer: _Composer, text: str, display: str) -> list[Problem]:
    lines = composer.lines
    problems = []
    for err in exc.errors(include_url=False):
        loc: Path_ = tuple(err["loc"])
        kind = err["type"]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if kind == "missing":
            msg = "required field is missing"
        elif kind == "extra_forbidden":
            key = str(loc[-1])
            msg = f"unknown key {key!r}"
            if key in ("headlines", "details"):
                msg += (
                    "; write each headline with its detail under stories:"
                    " (- headline: ... / detail: ...)"
                )
            else:
                close = difflib.get_close_matches(key, _KNOWN_FIELDS, n=1)
                if close:
                    msg += f" (did you mean {close[0]!r}?)"
        elif kind.startswith("date") and loc and loc[-1] == "date":
            msg = f"not a date: {err.get('input')!r} (write it as YYYY-MM-DD, e.g. 2023-10-13)"
        elif kind == "too_short" and loc == ("stories",):
            msg = "needs at least one story (a headline with its detail)"
        elif loc == ("hero", "src") and msg == "must not be empty":
            msg = (
                "must not be empty: name an image file or an https:// URL, "
                "or remove the whole hero: block for an issue without an image"
            )
        elif kind in ("string_type", "int_type", "list_type", "model_type", "dict_type"):
            msg = f"{msg}, got {type(err.get('input')).__name__} {err.get('input')!r}"[:200]
        line = _line_for(lines, loc)
        quoted = _QUOTED.search(msg)
        if quoted and loc in composer.spans:
            line = line_within(text, composer.spans[loc], quoted.group(1), line)
        problems.append(Problem(display, line, format_path(loc), msg))
    return problems
