"""Screenshot a report page (or one of its sections) in headless Chromium, as in docs/.

    python docs/screenshot.py RESULTS/<grid>/report OUT.png [--section "The margin"] [--width 1300] [--unfold]

The page as a reader first sees it (its verdict, the sections below folded), the whole page
(--unfold), or only the section under the <h2> named by --section, opened (with the page's own
style), rendered at --width pixels, cropped below the last non-white row and stored with 256
colours (a screenshot of figures and tables loses nothing visible; the file is a third).
Needs `chromium` on the PATH (apt-get install -y chromium).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--hide-scrollbars")


def page_html(report: Path, section: str | None, unfold: bool = False) -> str:
    page = (report / "index.html").read_text()
    if unfold:  # the page folds every section below its verdict: open them all
        page = page.replace("<details>", "<details open>")
    if section is None:
        return page
    head = page[: page.index("<body>") + len("<body>")]
    name = re.escape(section)
    match = (re.search(rf"<details[^>]*><summary><h2>{name}</h2></summary>.*?</details>", page, re.S)
             or re.search(rf"<h2>{name}</h2>.*?(?=<h2>|</body>)", page, re.S))  # a page before folding
    if match is None:
        sys.exit(f"screenshot: no section <h2>{section}</h2> in {report / 'index.html'}")
    return head + match.group(0).replace("<details>", "<details open>", 1) + "</body></html>"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("report", type=Path, help="a report folder (holds index.html)")
    p.add_argument("out", type=Path)
    p.add_argument("--section", default=None, help="only the section under this <h2> heading")
    p.add_argument("--width", type=int, default=1300)
    p.add_argument("--unfold", action="store_true",
                   help="open every folded section (the whole page; without it, what a reader first sees)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "page.html"  # beside nothing: every image is embedded in the page
        html.write_text(page_html(args.report, args.section, args.unfold))
        shot = Path(tmp) / "shot.png"
        subprocess.run([shutil.which("chromium") or "chromium", *CHROMIUM_FLAGS,
                        f"--user-data-dir={tmp}/profile", f"--screenshot={shot}",
                        f"--window-size={args.width},20000", html.as_uri()],
                       check=True, capture_output=True, timeout=300)
        image = Image.open(shot).convert("RGB")
    rows = np.flatnonzero((np.asarray(image.convert("L")) < 250).any(axis=1))
    image = image.crop((0, 0, image.width, min(image.height, int(rows.max()) + 20)))
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                   dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(f"{args.out}: {image.width} x {image.height}")


if __name__ == "__main__":
    main()
