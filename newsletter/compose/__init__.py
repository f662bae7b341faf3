"""Compose: an issue file becomes the email people read.

Owns the pipeline's first stage, issue file -> model -> markup -> render -> message:
:mod:`.issuefile` (YAML with a line for every field, located errors),
:mod:`.lint` (warnings for a valid issue), :mod:`.scaffold` (the next issue's file),
:mod:`.models` (pydantic, no I/O), :mod:`.markup` (inline Markdown, pure),
:mod:`.linebreak` (display width, kinsoku wrapping, CJK line folding; pure),
:mod:`.render` (HTML + plaintext, CSS inlined, pure), :mod:`.message` (one
recipient's MIME message from the rendered issue), :mod:`.build` and :mod:`.preview`
(the build folder and the local preview server).

May import: the shared base (config, errors, files, tokens, console, i18n) only.
"""
