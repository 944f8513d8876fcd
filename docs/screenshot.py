"""Screenshot a report page (or one of its sections), or a live page, in headless Chromium, as in docs/.

    python docs/screenshot.py RESULTS/<grid>/report OUT.png [--section "The margin"] [--width 1300] [--unfold]
    python docs/screenshot.py http://127.0.0.1:6006/#hparams OUT.png [--height 1000] [--wait-s 20]
        [--click "Parallel Coordinates View" --click nLayerG ...]

The page as a reader first sees it (its verdict, the sections below folded), the whole page
(--unfold), or only the section under the <h2> named by --section, opened (with the page's own
style), rendered at --width pixels, cropped below the last non-white row and stored with 256
colours (a screenshot of figures and tables loses nothing visible; the file is a third).

A URL (TensorBoard's dashboards) is a JavaScript app that fills its window: Chromium is driven
over its DevTools pipe, the page gets --wait-s seconds to load and draw, then each --click text
is clicked like a mouse would (the element showing exactly that text, inside shadow DOM too:
a tab, a checkbox), and the window (--width x --height) is shot.
Needs `chromium` on the PATH (apt-get install -y chromium).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
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


# The centre of the element whose whole text is the given text (case aside), searched through
# every shadow root: a control (a checkbox, a tab, an option) first, else the deepest such
# element; scrolled into view first; null if none is on the page.
FIND_JS = """(text => {
  const all = [], walk = root => { for (const el of root.querySelectorAll('*')) {
    all.push(el); if (el.shadowRoot) walk(el.shadowRoot); } };
  walk(document);
  const hits = all.filter(el => (el.textContent || '').trim().toLowerCase() === text.toLowerCase()
                          && el.getClientRects().length);
  const controls = hits.filter(el => ['checkbox', 'tab', 'option', 'button', 'radio'].includes(el.getAttribute('role')));
  const hit = controls.length ? controls[0] : hits[hits.length - 1];
  if (!hit) return null;
  hit.scrollIntoView({block: 'center'});
  const box = hit.getBoundingClientRect();
  return [box.x + box.width / 2, box.y + box.height / 2];
})"""


class DevTools:
    """Chromium over its DevTools pipe (--remote-debugging-pipe: commands in on fd 3, replies out
    on fd 4, each a JSON message ending in NUL), one page attached."""

    def __init__(self, width: int, height: int, profile: str):
        to_chrome, self._write = os.pipe()
        self._read, from_chrome = os.pipe()
        def as_fds_3_and_4():
            os.dup2(to_chrome, 3)
            os.dup2(from_chrome, 4)
        self.proc = subprocess.Popen([shutil.which("chromium") or "chromium", *CHROMIUM_FLAGS,
                                      "--remote-debugging-pipe", f"--user-data-dir={profile}",
                                      f"--window-size={width},{height}", "about:blank"],
                                     pass_fds=(3, 4), preexec_fn=as_fds_3_and_4,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome)
        os.close(from_chrome)
        self._id, self._buffer, self.session, self.size = 0, b"", None, (width, height)

    def open(self, url: str) -> None:
        """A new page at `url`, attached: the commands that follow go to it."""
        target = self.send("Target.createTarget", url=url)["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride", width=self.size[0], height=self.size[1],
                  deviceScaleFactor=1, mobile=False)

    def send(self, method: str, **params) -> dict:
        """Send a command; its result (events in between are skipped)."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    sys.exit(f"screenshot: chromium closed its DevTools pipe ({method})")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    sys.exit(f"screenshot: {method}: {reply['error'].get('message')}")
                return reply["result"]

    def click(self, text: str) -> None:
        found = self.send("Runtime.evaluate", expression=f"{FIND_JS}({json.dumps(text)})", returnByValue=True)
        point = found["result"].get("value")
        if not point:
            sys.exit(f"screenshot: nothing on the page shows the text {text!r} to click")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=point[0], y=point[1], button="left", clickCount=1)

    def shot(self) -> bytes:
        return base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        try:
            self.session = None
            self.send("Browser.close")
        except SystemExit:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        os.close(self._write)
        os.close(self._read)


def shoot_url(url: str, out: Path, width: int, height: int, wait_s: float, clicks: list[str], tmp: str) -> None:
    """A live page after wait_s seconds and the clicks (each given a few seconds to redraw)."""
    browser = DevTools(width, height, f"{tmp}/profile")
    try:
        browser.open(url)
        time.sleep(wait_s)
        for text in clicks:
            browser.click(text)
            time.sleep(3)
        out.write_bytes(browser.shot())
    finally:
        browser.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("report", help="a report folder (holds index.html), or the http:// URL of a live page")
    p.add_argument("out", type=Path)
    p.add_argument("--section", default=None, help="only the section under this <h2> heading")
    p.add_argument("--width", type=int, default=1300)
    p.add_argument("--unfold", action="store_true",
                   help="open every folded section (the whole page; without it, what a reader first sees)")
    p.add_argument("--height", type=int, default=1000, help="a URL's window height (default 1000)")
    p.add_argument("--wait-s", type=float, default=20, help="a URL's seconds to load and draw (default 20)")
    p.add_argument("--click", action="append", default=[], metavar="TEXT",
                   help="a URL: click the element showing this text, then shoot (repeatable, in order)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        if args.report.startswith(("http://", "https://")):
            shoot_url(args.report, shot, args.width, args.height, args.wait_s, args.click, tmp)
        else:
            html = Path(tmp) / "page.html"  # beside nothing: every image is embedded in the page
            html.write_text(page_html(Path(args.report), args.section, args.unfold))
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
