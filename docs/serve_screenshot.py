#!/usr/bin/env python
"""Upload a video to a running flallm-serve page in headless Chromium and save a screenshot of the result.

    python docs/serve_screenshot.py http://127.0.0.1:8000/ clip.mp4 docs/images/serve.png [--start S --end E]

A real browser does what a person does: opens the page, chooses the file in the form's file input,
clicks Translate and waits for the result page. Chromium is driven through the Chrome DevTools
protocol on a pipe (``--remote-debugging-pipe``: JSON messages ending in a NUL byte on file
descriptors 3 and 4), so only the standard library is needed. Chromium: ``apt-get install chromium``.
"""
import argparse
import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def _as_fds_3_and_4(read_end: int, write_end: int):
    """In the child: the pipe ends as file descriptors 3 and 4 (copied above 10 first: they may be 3 or 4)."""
    a, b = fcntl.fcntl(read_end, fcntl.F_DUPFD, 10), fcntl.fcntl(write_end, fcntl.F_DUPFD, 10)
    os.dup2(a, 3)
    os.dup2(b, 4)


class Browser(object):
    def __init__(self, chromium: str, profile: str):
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()
        # chromium reads commands on fd 3 and writes answers on fd 4
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--no-first-run", "about:blank"],
            pass_fds=(3, 4), preexec_fn=lambda: _as_fds_3_and_4(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf, self._id = b"", 0

    def _read(self) -> dict:
        while b"\0" not in self._buf:
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: str = None, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def close(self):
        try:
            self.call("Browser.close")
        finally:
            self.proc.wait(timeout=30)


def evaluate(browser, session, expression):
    return browser.call("Runtime.evaluate", session, expression=expression, returnByValue=True)["result"].get("value")


def wait_for(browser, session, expression, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = evaluate(browser, session, expression)
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"waited {timeout} s for {expression}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url")
    p.add_argument("video")
    p.add_argument("png")
    p.add_argument("--start")
    p.add_argument("--end")
    p.add_argument("--width", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = p.parse_args()
    profile = tempfile.mkdtemp(prefix="flallm-chromium-")
    try:
        b = Browser(args.chromium, profile)
        try:
            target = b.call("Target.createTarget", url=args.url)["targetId"]
            session = b.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            wait_for(b, session, "document.readyState === 'complete' && !!document.getElementById('video')", 60)
            root = b.call("DOM.getDocument", session)["root"]["nodeId"]
            node = b.call("DOM.querySelector", session, nodeId=root, selector="#video")["nodeId"]
            b.call("DOM.setFileInputFiles", session, nodeId=node, files=[os.path.abspath(args.video)])
            for name in ("start", "end"):
                if getattr(args, name) is not None:
                    evaluate(b, session, f"document.querySelector('input[name={name}]').value = "
                                         f"{json.dumps(getattr(args, name))}")
            evaluate(b, session, "document.querySelector('input[type=submit]').click()")
            found = wait_for(b, session, "document.readyState === 'complete' && "
                                         "(document.getElementById('translation') || document.getElementById('error'))"
                                         " ? (document.getElementById('translation') || "
                                         "document.getElementById('error')).textContent : ''", args.timeout)
            print(f"page: {found}")
            height = evaluate(b, session, "document.documentElement.scrollHeight")
            b.call("Emulation.setDeviceMetricsOverride", session, width=args.width, height=int(height),
                   deviceScaleFactor=1, mobile=False)
            png = b.call("Page.captureScreenshot", session, format="png")["data"]
            os.makedirs(os.path.dirname(os.path.abspath(args.png)), exist_ok=True)
            with open(args.png, "wb") as f:
                f.write(base64.b64decode(png))
            print(f"wrote {args.png}")
        finally:
            b.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)  # chromium may still be writing its profile as it exits
    return 0


if __name__ == "__main__":
    sys.exit(main())
