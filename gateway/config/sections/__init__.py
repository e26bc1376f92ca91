"""One reader per config section, grouped by topic; `loading.build` calls them in order.

Each `read_*` takes the section's `Table` (or list of tables for `[[customers]]` and `[[imap]]`),
records every problem under the section's keys, calls `finish`, and returns the section's settings.
"""
