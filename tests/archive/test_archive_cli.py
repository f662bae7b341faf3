"""`newsletter archive`: what it reports, and invalid issue files located, all at once."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from newsletter.cli.app import app
from tests.support.archivekit import make_draft, mark_sent, write_variant

runner = CliRunner()


def test_cli_builds_and_reports_each_file(three: Path) -> None:
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "archived 3 issues into build/archive/: 8 written, 0 unchanged\n"
        "  written   archive.css\n"
        "  written   assets/vol-2.19/vol-2.19-hero.png\n"
        "  written   assets/vol-2.20/vol-2.19-hero.png\n"
        "  written   feed.xml\n"
        "  written   index.html\n"
        "  written   vol-2.18.html\n"
        "  written   vol-2.19.html\n"
        "  written   vol-2.20.html\n"
    )
    again = runner.invoke(app, ["archive"])
    assert again.exit_code == 0
    assert again.stdout.splitlines()[0] == (
        "archived 3 issues into build/archive/: 0 written, 8 unchanged"
    )
    assert "  unchanged feed.xml" in again.stdout.splitlines()


def test_cli_out_option(three: Path) -> None:
    result = runner.invoke(app, ["archive", "--out", "site/archive"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("archived 3 issues into site/archive/: 8 written")
    assert (three / "site" / "archive" / "vol-2.19.html").is_file()
    assert not (three / "build").exists()


def _break_vol_2_20(home: Path) -> Path:
    return write_variant(home, "2.20", "2023-13-45")


def test_cli_invalid_published_issue_fails_with_located_error(three: Path) -> None:
    _break_vol_2_20(three)
    mark_sent(three, "vol-2.20")  # it went out: its page must not silently disappear
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: issues/vol-2.20.yaml:5: date: not a date: '2023-13-45' "
        "(write it as YYYY-MM-DD, e.g. 2023-10-13)\n"
        "1 error\n"
        "hint: fix the issue file, or run `newsletter archive --skip-invalid` "
        "to build the archive without it\n"
    )
    assert not (three / "build").exists()


def test_cli_skip_invalid_lists_what_it_skipped(three: Path) -> None:
    assert runner.invoke(app, ["archive"]).exit_code == 0
    _break_vol_2_20(three)
    mark_sent(three, "vol-2.20")
    result = runner.invoke(app, ["archive", "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "skipped issues/vol-2.20.yaml (1 error):\n"
        "  issues/vol-2.20.yaml:5: date: not a date: '2023-13-45' "
        "(write it as YYYY-MM-DD, e.g. 2023-10-13)\n"
    )
    lines = result.stdout.splitlines()
    assert lines[0] == ("archived 2 issues into build/archive/: 3 written, 3 unchanged, 1 skipped")
    # the skipped issue keeps its last good page; nothing links to it any more
    assert "  kept      vol-2.20.html" in lines
    assert "  written   vol-2.19.html" in lines
    index = (three / "build" / "archive" / "index.html").read_text()
    assert "vol-2.20.html" not in index


def test_volume_must_match_file_name(three: Path) -> None:
    text = (three / "issues" / "vol-2.19.yaml").read_text()
    (three / "issues" / "vol-2.21.yaml").write_text(text)
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        "error: issues/vol-2.21.yaml:4: volume: volume '2.19' does not match the file name "
        "'vol-2.21.yaml'",
        "1 error",
    ]


def test_missing_hero_file_is_located(three: Path) -> None:
    path = three / "issues" / "vol-2.20.yaml"
    path.write_text(path.read_text().replace("assets/vol-2.19-hero.png", "assets/nope.png"))
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: issues/vol-2.20.yaml:8: hero.src: image file not found: issues/assets/nope.png\n"
        "1 error\n"
    )


def test_every_invalid_file_is_reported_at_once(three: Path) -> None:
    _break_vol_2_20(three)
    mark_sent(three, "vol-2.20")
    path = three / "issues" / "vol-2.18.yaml"
    path.write_text(path.read_text().replace("  alt:", "  alts:"))
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 1
    assert "issues/vol-2.18.yaml:9: hero.alts: unknown key 'alts'" in result.stderr
    assert "issues/vol-2.20.yaml:5: date: not a date" in result.stderr
    assert "\n2 errors\n" in result.stderr


def test_no_issues_is_an_error(home: Path) -> None:
    (home / "issues" / "vol-2.19.yaml").unlink()
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 1
    assert result.stderr == "error: issues/: no issue files (vol-X.Y.yaml) to archive\n"


def test_all_invalid_with_skip_is_an_error(home: Path) -> None:
    _break = write_variant(home, "2.19", "2023-02-30")
    assert _break.name == "vol-2.19.yaml"
    mark_sent(home, "vol-2.19")
    result = runner.invoke(app, ["archive", "--skip-invalid"])
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "error: issues/: every published issue has errors; nothing to archive\n"
    )


# Published means sent (or `published: true`) ----------------------------------------
def test_drafts_and_future_issues_stay_out_of_pages_index_and_feed(three: Path) -> None:
    make_draft(three, "2.21", "2023-11-10")
    write_variant(three, "2.22", "2999-01-01")  # published: true, but not yet its date
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "left out issues/vol-2.21.yaml (draft: not sent, not `published: true`)\n"
        "left out issues/vol-2.22.yaml (dated in the future)\n"
    )
    assert result.stdout.splitlines()[0].endswith(", 2 left out (unpublished)")
    out = three / "build" / "archive"
    for name in ("index.html", "feed.xml"):
        text = (out / name).read_text()
        assert "vol-2.20" in text
        assert "vol-2.21" not in text and "vol-2.22" not in text
    assert sorted(p.name for p in out.glob("vol-*.html")) == [
        "vol-2.18.html",
        "vol-2.19.html",
        "vol-2.20.html",
    ]


def test_a_sent_draft_is_published_and_an_old_draft_page_is_removed(three: Path) -> None:
    make_draft(three, "2.21", "2023-11-10")
    out = three / "build" / "archive"
    preview = runner.invoke(app, ["archive", "--include-drafts", "--out", "build/archive"])
    assert preview.exit_code == 0, preview.output
    assert (out / "vol-2.21.html").is_file()  # a preview leaked into the served folder...
    result = runner.invoke(app, ["archive"])
    assert "  removed   vol-2.21.html" in result.stdout.splitlines()  # ...is taken back
    mark_sent(three, "vol-2.21")
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "vol-2.21.html" in (out / "index.html").read_text()


def test_a_broken_draft_never_breaks_the_archive(three: Path) -> None:
    make_draft(three, "2.21", "2023-02-30")
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == "skipped issues/vol-2.21.yaml (draft, 1 error):"
    assert result.stdout.startswith("archived 3 issues into build/archive/: 8 written")
    assert not (three / "build" / "archive" / "vol-2.21.html").exists()


def test_include_drafts_is_a_private_preview(three: Path) -> None:
    make_draft(three, "2.21", "2023-11-10")
    refused = runner.invoke(app, ["archive", "--include-drafts"])
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: --include-drafts needs --out DIR\n")
    assert not (three / "build").exists()
    result = runner.invoke(app, ["archive", "--include-drafts", "--out", "preview"])
    assert result.exit_code == 0, result.output
    assert (three / "preview" / "vol-2.21.html").is_file()
    assert not (three / "build").exists()


def test_nothing_published_yet_says_how_to_publish(home: Path) -> None:
    make_draft(home, "2.19", "2023-10-13")
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: issues/: nothing published yet (1 draft(s))\n")
    assert "published: true" in result.stderr
