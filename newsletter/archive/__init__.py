"""Archive: past issues as a static web site with an Atom feed.

The email's "view in browser" target: one page per issue, an index and a feed, written
from the issue files with the archive templates. One module per step:
:mod:`.issues` (every issue file loaded, its hero image read, invalid files collected),
:mod:`.pages` (each issue's page and the index, pure), :mod:`.feed` (the Atom feed,
pure), :mod:`.site` (the site assembled, written where it changed; ``build_archive``).

May import: the shared base and :mod:`newsletter.compose`.
"""
