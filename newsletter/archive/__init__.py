"""Archive: past issues as a static web site with an Atom feed.

Owns :mod:`.site`, the email's "view in browser" target: one page per issue, an index
and a feed, written from the issue files with the archive templates.

May import: the shared base and :mod:`newsletter.compose`.
"""
