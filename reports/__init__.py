"""Reports people and CI read.

- :mod:`reports.diff`: the compatibility diff engine (schema vs schema, matched
  structurally from command and event names), with rules in :mod:`reports.rules`,
  renderers in :mod:`reports.diff_render` and allow files in :mod:`reports.allow`.
- :mod:`reports.results`: check results as JUnit XML, JSON, Markdown and HTML.
- :mod:`reports.matrix`: several targets' results side by side.
"""
