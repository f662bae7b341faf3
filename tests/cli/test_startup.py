"""Commands import what they use when they use it: the import graph of a fresh process.

Speed itself is measured by bench/bench_startup.py (no timed assertions here); these
tests fail when a module-level import drags a heavy library into a command that does
not need it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import typer
import typer.core
import typer.main

from newsletter.audience.subscribers import STATUSES, SubscriberStore
from newsletter.cli.app import PROVIDERS, build_app
from newsletter.cli.subscribers import COMMANDS as SUBSCRIBER_COMMANDS
from newsletter.cli.subscribers import build_app as build_subscribers_app
from newsletter.cli.subscribers import command_named
from newsletter.cli.subscribers.options import STATUS_HELP
from newsletter.config import load_settings
from newsletter.home import read_home
from tests.support.sendkit import write_subscribers

ROOT = Path(__file__).resolve().parent.parent.parent
#: libraries of other commands: never loaded by a command that does not use them
OTHERS = {"premailer", "starlette", "uvicorn", "sendgrid", "cryptography", "jinja2"}
_PROBE = """
import json, sys
from newsletter.cli.app import main
sys.argv = ["newsletter", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded(home: Path, *argv: str) -> set[str]:
    """Top-level modules (and newsletter's own) a fresh process has after running argv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SMTP_"))}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], cwd=home, env=env, capture_output=True, text=True
    )
    assert proc.stdout, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["code"] in (0, None), proc.stderr
    names: list[str] = result["modules"]
    return {n for n in names if n.startswith("newsletter.")} | {n.split(".")[0] for n in names}


def test_help_loads_no_library_a_command_uses(home: Path) -> None:
    mods = loaded(home, "--help")
    assert not mods & OTHERS
    # nor settings, the store, the journal or rich: --help prints Typer's text only
    heavy = {"pydantic", "pydantic_settings", "email_validator", "rich", "sqlite3", "yaml"}
    assert not mods & heavy, mods & heavy
    assert "subprocess" not in mods  # typer's, for launch() and completion installs only
    assert not {m for m in mods if m.startswith(("newsletter.compose", "newsletter.audience"))}


def test_status_reads_the_journal_without_settings_or_the_composer(home: Path) -> None:
    mods = loaded(home, "status", "vol-2.19")
    assert not mods & OTHERS
    assert not mods & {"pydantic_settings", "email_validator", "yaml", "filelock", "rich"}
    assert "newsletter.delivery.journal" in mods  # it did read the journal
    # nor any other command's module: a run registers the command it names
    assert "newsletter.cli.send" not in mods and "newsletter.cli.subscribers" not in mods
    assert not {m for m in mods if m.startswith("newsletter.compose")}


def test_subscribers_stats_loads_the_store_only(home: Path) -> None:
    write_subscribers(home / "subscribers" / "subscribers.csv", 5)
    mods = loaded(home, "subscribers", "stats")
    assert not mods & OTHERS
    # sqlite3 is needed: the consent ledger is folded into the file before it is read;
    # the lock is not taken when there is nothing to fold, and the counts print without rich;
    # plain ASCII addresses are checked without email-validator (newsletter.emailsyntax)
    assert not mods & {"pydantic_settings", "yaml", "filelock", "rich", "email_validator"}
    assert "newsletter.audience.subscribers.store" in mods
    assert not {m for m in mods if m.startswith(("newsletter.compose", "newsletter.delivery"))}
    assert "newsletter.audience.subscribers.fold" in mods  # a new file: its first fold
    # nothing to fold since: the fold's code is not loaded; only the command run is registered
    mods = loaded(home, "subscribers", "stats")
    fold_code = {
        f"newsletter.audience.subscribers.{m}" for m in ("fold", "importledger", "fastpass")
    }
    assert not mods & fold_code, mods & fold_code
    assert not mods & {"newsletter.cli.subscribers.changes", "newsletter.cli.subscribers.sync"}
    assert not mods & {"subprocess", "secrets", "tempfile"}  # (used by writes and rebuilds)
    assert "hashlib" not in mods  # (OpenSSL: only a long list's compact key table hashes)


def test_subscribers_stats_loads_the_fold_when_there_is_something_to_fold(home: Path) -> None:
    # the same run with an unfolded ledger change: the fold runs (and says what it did)
    write_subscribers(home / "subscribers" / "subscribers.csv", 5)
    loaded(home, "subscribers", "stats")  # the new file's first fold
    settings = load_settings(None, home=home)
    store = SubscriberStore.from_settings(settings)
    store.suppress({"reader00001@example.org": ("unsubscribed", "test")}, source="test")
    mods = loaded(home, "subscribers", "stats")
    assert "newsletter.audience.subscribers.fold" in mods
    assert "email_validator" not in mods


def test_check_renders_with_premailer_but_without_requests(home: Path) -> None:
    mods = loaded(home, "check", "vol-2.19")
    assert "premailer" in mods  # it did inline the CSS
    assert not mods & {"requests", "urllib3", "charset_normalizer", "chardet"}
    # an English issue needs no catalogue (Babel) and, all printable ASCII, no wcwidth; ASCII
    # addresses in the settings need no email-validator; checking builds no message
    unneeded = {"babel", "email_validator", "wcwidth", "asyncio"}
    assert not mods & unneeded, mods & unneeded
    assert "newsletter.compose.message" not in mods

def assert_probe(probe: str) -> None:
    """Run ``probe`` in a fresh interpreter with this checkout's package; it prints ok."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert proc.stdout == "ok\n", proc.stderr



def test_premailer_still_reaches_the_real_requests_when_it_asks() -> None:
    probe = (
        "import sys; from newsletter.compose.render import _premailer\n"
        "stand_in = _premailer().premailer.requests\n"
        "import cssutils.helper, cssutils._fetch as fetch\n"
        "assert not {'requests', 'urllib.request', 'encutils'} & set(sys.modules)\n"
        # cssutils' fetcher: urllib.request (a package attribute until used) and encutils
        "assert cssutils.helper.path2url('/a b') == 'file:/a%20b'\n"
        "import urllib.request, encutils\n"
        "assert urllib.request.urlopen is fetch.urllib.request.urlopen\n"
        "assert fetch.encutils.getHTTPInfo is encutils.getHTTPInfo\n"
        "import requests\n"
        "assert stand_in.get is requests.get and stand_in.Session is requests.Session\n"
        "print('ok')"
    )
    assert_probe(probe)


def test_settings_load_without_asyncio_which_pydantic_settings_still_reaches() -> None:
    probe = (
        "import sys; from newsletter.config import load_settings\n"
        "import pydantic_settings.main as m\n"
        "load_settings(None)\n"
        "assert 'asyncio' not in sys.modules\n"
        "stand_in = m.asyncio\n"
        "import asyncio\n"
        "assert stand_in.run is asyncio.run\n"
        "assert stand_in.get_running_loop is asyncio.get_running_loop\n"
        "print('ok')"
    )
    assert_probe(probe)


def test_typer_still_reaches_subprocess_when_it_launches() -> None:
    probe = (
        "import sys; import newsletter.cli.app, typer.main as m\n"
        "assert 'subprocess' not in sys.modules\n"
        "import subprocess\n"
        "assert m.subprocess.Popen is subprocess.Popen and m.subprocess.DEVNULL == -3\n"
        "print('ok')"
    )
    assert_probe(probe)


def test_a_stand_in_gives_way_to_the_real_module_on_first_use() -> None:
    probe = (
        "import sys; from newsletter.lazyimport import deferring\n"
        "with deferring('colorsys', 'json'):\n"
        "    import colorsys\n"
        "    assert sys.modules['colorsys'] is colorsys and 'ONE_THIRD' not in vars(colorsys)\n"
        "    assert colorsys.rgb_to_hsv(1, 0, 0) == (0, 1, 1)\n"  # the real one, now
        "    assert sys.modules['colorsys'] is not colorsys\n"
        "assert 'json' not in sys.modules\n"  # never imported: no stand-in left behind
        "print('ok')"
    )
    assert_probe(probe)


def test_the_cli_turns_off_pydantics_plugin_search_unless_told_otherwise(home: Path) -> None:
    # what the run sees, then what the program that called main() has afterwards
    code = (
        "import os, sys; sys.argv = ['newsletter', '--version']\n"
        "import newsletter.cli.app as cli\n"
        "real, seen = cli.build_app, []\n"
        "def spy(*args):\n"
        "    seen.append(os.environ.get('PYDANTIC_DISABLE_PLUGINS'))\n"
        "    return real(*args)\n"
        "cli.build_app = spy\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print(repr(seen[0]), repr(os.environ.get('PYDANTIC_DISABLE_PLUGINS')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.stdout.splitlines()[-1] == "'__all__' None", run.stderr
    env["PYDANTIC_DISABLE_PLUGINS"] = ""  # the user's choice stands
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.stdout.splitlines()[-1] == "'' ''", run.stderr


@pytest.mark.parametrize(
    "command",
    ["send", "check", "serve", "archive", "signups", "cancel", "run-due", "report", "doctor"],
)
def test_a_command_help_loads_none_of_the_other_commands_libraries(
    home: Path, command: str
) -> None:
    mods = loaded(home, command, "--help")
    assert not mods & OTHERS, mods & OTHERS


def test_the_status_list_in_help_is_the_store_list() -> None:
    assert ", ".join(STATUSES) == STATUS_HELP


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("NEWSLETTER_HOME=site\n", "site"),
        ("export NEWSLETTER_HOME='my site'  # quoted\n", "my site"),
        ('NEWSLETTER_HOME="a"\nNEWSLETTER_HOME=b # last wins\n', "b"),
        ("NEWSLETTER_HOMEX=nope\n# NEWSLETTER_HOME=commented\n", "."),
    ],
)
def test_read_home_agrees_with_the_settings(
    home: Path, monkeypatch: pytest.MonkeyPatch, line: str, expected: str
) -> None:
    env = home / "test.env"
    env.write_text(line, encoding="utf-8")
    assert read_home(env) == Path(expected) == load_settings(env).home
    monkeypatch.setenv("NEWSLETTER_HOME", "from-env")  # the environment wins, as there
    assert read_home(env) == Path("from-env") == load_settings(env).home


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["stats"], "stats"),
        (["stats", "--top", "3"], "stats"),
        (["--file", "x.csv", "stats"], "stats"),
        (["-f", "stats", "list"], "list"),  # a file named "stats"
        (["--file=x.csv", "--lock-timeout", "2", "import", "a.csv"], "import"),
        (["--help"], None),
        (["--help", "list"], None),  # the group's help: every command listed
        (["-f", "x.csv", "--help", "stats"], None),
        (["stats", "--help"], "stats"),  # the command's own help
        ([], None),
        (["stat"], None),  # a typo: every command, so click can suggest the right one
        (["--", "stats"], None),
    ],
)
def test_the_subscribers_group_finds_the_command_a_run_names(
    args: list[str], expected: str | None
) -> None:
    assert command_named(args) == expected


def assert_each_registered_alone_is_the_same(
    build: Callable[..., typer.Typer], names: Iterable[str]
) -> None:
    """Every command of ``build()``, registered alone by ``build(name)``: the same command
    (help and parameters), whichever way it was registered."""
    full = typer.main.get_command(build())
    assert isinstance(full, typer.core.TyperGroup)
    assert sorted(full.commands) == sorted(names)
    for name in names:
        alone = typer.main.get_command(build(name))
        assert isinstance(alone, typer.core.TyperGroup)
        assert list(alone.commands) == [name]
        assert alone.commands[name].help == full.commands[name].help
        assert [p.name for p in alone.commands[name].params] == [
            p.name for p in full.commands[name].params
        ]


def test_each_subscribers_command_registered_alone_is_the_same_command() -> None:
    assert_each_registered_alone_is_the_same(build_subscribers_app, SUBSCRIBER_COMMANDS)
    full = typer.main.get_command(build_subscribers_app())
    assert isinstance(full, typer.core.TyperGroup)
    assert list(full.commands) == list(SUBSCRIBER_COMMANDS)  # the order the group's help lists


def test_each_command_is_registered_by_the_module_its_provider_entry_names() -> None:
    assert_each_registered_alone_is_the_same(build_app, PROVIDERS)


def test_command_modules_evaluate_their_annotations_at_import() -> None:
    # Typer reads every registered command's signature on each run: string annotations
    # (PEP 563) cost a compile and an eval each, 11 ms of `newsletter --help`
    cli = ROOT / "newsletter" / "cli"
    lazy = [
        p.name for p in cli.rglob("*.py") if "from __future__ import annotations" in p.read_text()
    ]
    assert lazy == []


def _type_checking_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in ast.walk(node):
                if isinstance(imp, ast.Import | ast.ImportFrom):
                    names |= {a.asname or a.name.split(".")[0] for a in imp.names}
    return names


def test_no_signature_names_a_type_that_exists_only_for_the_type_checker() -> None:
    # without PEP 563 such an annotation raises NameError when its def runs: at import
    # for a module-level function, only when the command runs for a nested one
    unquoted: list[str] = []
    for path in sorted((ROOT / "newsletter" / "cli").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hidden = _type_checking_names(tree)
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
            annotations = [a.annotation for a in args if a.annotation] + [fn.returns]
            for annotation in filter(None, annotations):
                unquoted += [
                    f"{path.name}:{fn.lineno} {n.id}"
                    for n in ast.walk(annotation)
                    if isinstance(n, ast.Name) and n.id in hidden
                ]
    assert unquoted == []
