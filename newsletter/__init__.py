"""newsletter: compile, render and deliver an email digest, and keep its subscriber list.

The stages, each a package that imports only the ones below it (``tests/test_layout.py``
holds the rule):

* the shared base, here at the top: :mod:`.config` (settings), :mod:`.errors` (the one
  error tree and exit codes), :mod:`.files` (crash-safe writes), :mod:`.database`
  (SQLite files), :mod:`.tokens` (signed tokens), :mod:`.console` (terminal output),
  :mod:`.tls` (verifying TLS contexts), :mod:`.oauth` (OAuth 2.0 tokens for mail logins),
  :mod:`.i18n` (message catalogues, choosing a reader's language), :mod:`.emailsyntax`
  (address syntax), :mod:`.lazyimport` (libraries without their unused heavy imports);
* :mod:`.compose` -- issue file -> model -> render -> message;
* :mod:`.delivery` -- send loop, journal, transports;
* :mod:`.audience` -- subscriber store, inbound mail, signups, provider events;
* :mod:`.archive` -- the static web archive and feed;
* :mod:`.web` -- the ASGI app behind ``newsletter serve``;
* :mod:`.cli` -- the ``newsletter`` command.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
