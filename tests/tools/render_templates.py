"""Renders every notification template's HTML part to PNG with headless Chromium, to look at how it
reads in a browser-like mail client. A test-time tool, not part of ticketgate.

    python -m tests.tools.render_templates [--out DIR] [--only NAME ...]

For each template in templates/ (sample data from tests/tools/template_samples.py) it writes, in DIR
(default ./template-renders): NAME.html and NAME.png (800 px wide, a desktop reading pane),
NAME.narrow.png (375 px, a phone), NAME.stripped.html and NAME.stripped.png (every <style> element
and stylesheet link removed, as Gmail-like clients do: what is left is what the inline styles carry),
and NAME.txt (the plain-text part). `cid:` images are made as local PNG files, as a mail client
resolves them from the message. Needs `chromium` (Debian package) on PATH or in $CHROMIUM.
Exit status 1 when a template has no sample data or Chromium failed on one.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from gateway.notify.render import Renderer
from tests.tools.template_samples import sample_for

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
WIDTHS = {"": 800, ".narrow": 375}
HEIGHT = 1400
_STYLE = re.compile(
    r"<style\b.*?</style\s*>|<link\b[^>]*rel=[\"']?stylesheet[^>]*>", re.IGNORECASE | re.DOTALL
)


def template_names(folder: Path = TEMPLATES) -> list[str]:
    """Every template with an HTML part (partials such as _layout start with an underscore)."""
    return sorted(
        p.name.removesuffix(".html.j2") for p in folder.glob("*.html.j2") if not p.name.startswith("_")
    )


def strip_styles(html: str) -> str:
    return _STYLE.sub("", html)


def fake_screenshot(width: int, height: int, label: str) -> bytes:
    """A stand-in for a thumbnail: a browser window with a title bar and a few blocks."""
    image = Image.new("RGB", (width, height), (245, 246, 248))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 22), fill=(60, 64, 72))
    draw.rectangle((16, 40, width - 16, 70), fill=(255, 255, 255), outline=(200, 200, 200))
    draw.rectangle((16, 84, width // 2, height - 16), fill=(225, 232, 245))
    draw.rectangle((width // 2 + 8, 84, width - 16, 120), fill=(52, 120, 246))
    draw.text((24, 48), label, fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def with_local_images(html: str, context: dict[str, Any], out: Path, name: str) -> str:
    for shot in context.get("screenshots", []):
        width = int(shot["thumb_width"])
        height = max(1, round(width * shot["height"] / shot["width"]))
        path = out / f"{name}-shot{shot['number']}.png"
        path.write_bytes(fake_screenshot(width, height, shot["name"]))
        html = html.replace(f"cid:{shot['cid']}", path.resolve().as_uri())
    return html


def screenshot(chromium: str, page: Path, png: Path, width: int) -> str | None:
    """Render `page` to `png`; None when it worked, else what Chromium said."""
    with tempfile.TemporaryDirectory(prefix="tg-chromium-") as profile:
        run = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",  # as root in a container; the pages are our own
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={width},{HEIGHT}",
                f"--screenshot={png}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if run.returncode != 0 or not png.is_file():
        return run.stderr.strip()[-500:] or f"exit {run.returncode}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("template-renders"))
    parser.add_argument("--only", nargs="*", default=None, help="template names (default: all)")
    args = parser.parse_args(argv)
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print(
            "render_templates: chromium not found (apt-get install chromium, or set $CHROMIUM)",
            file=sys.stderr,
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    renderer = Renderer()
    failed = False
    for name in args.only or template_names():
        try:
            context = sample_for(name)
        except KeyError as exc:
            print(f"render_templates: {exc.args[0]}", file=sys.stderr)
            failed = True
            continue
        rendered = renderer.render(name, context)
        (args.out / f"{name}.txt").write_text(rendered.text, encoding="utf-8")
        html = with_local_images(rendered.html, context, args.out, name)
        pages = {"": html, ".stripped": strip_styles(html)}
        for variant, page_html in pages.items():
            page = args.out / f"{name}{variant}.html"
            page.write_text(page_html, encoding="utf-8")
            widths = WIDTHS if variant == "" else {variant: WIDTHS[""]}
            for suffix, width in widths.items():
                png = args.out / f"{name}{suffix or variant}.png"
                problem = screenshot(chromium, page, png, width)
                if problem:
                    print(f"render_templates: {name}{suffix}: chromium failed: {problem}", file=sys.stderr)
                    failed = True
                else:
                    print(png)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
