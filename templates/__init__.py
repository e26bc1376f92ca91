"""The notification templates (`NAME.txt.j2` and `NAME.html.j2` per event, `_layout.html.j2`).

Installed as the package `ticketgate_templates` (see setup.py) so they ship inside the wheel;
gateway/notify/render.py loads them from here, after the deployment's `notifications.templates_dir`.
This file makes it a regular package: a namespace package would merge every folder of that name
on the path, and a stray copy could then shadow or mix with the installed templates.
"""
