"""Only what pyproject.toml cannot say: the notification templates live in the top-level
`templates/` folder (beside gateway/, config/, systemd/, where the layout promises them) and are
installed as the data-only package `ticketgate_templates`. setuptools' `packages.find` cannot add a
package whose folder has another name, and an explicit package list would silently drop the next
subpackage of gateway/ from the wheel; so the list is found here and the one mapping added."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["gateway", "gateway.*"]), "ticketgate_templates"],
    package_dir={"ticketgate_templates": "templates"},
)
