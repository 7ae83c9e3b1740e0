"""Open a page in headless Debian Chromium over the DevTools pipe: screenshot plus console errors.

    shot = render("/path/index.html")   # Render(png=b"...", errors=["console.error: ..."], title="...")

New headless Chromium does not print console messages with --enable-logging, so this speaks the
DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated JSON) and
collects Runtime.consoleAPICalled (error), Runtime.exceptionThrown and Log.entryAdded (error:
failed loads, blocked requests).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--remote-debugging-pipe"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Render:
    png: bytes
    title: str
    errors: list[str] = field(default_factory=list)


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int):
        self.w, self.r, self.buf, self.next_id, self.events = write_fd, read_fd, b"", 0, []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self.read(timeout)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer over the DevTools pipe")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            e = self.read(deadline - time.monotonic())
            if e.get("method") == method:
                return e
            self.events.append(e)
        raise TimeoutError(f"no {method} within {timeout} s")


def render(page: Path, width: int = 1280, height: int = 1800) -> Render:
    exe = chromium()
    assert exe, "chromium is not installed (apt-get install -y chromium)"
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    with tempfile.TemporaryDirectory() as profile:
        # Chromium reads commands on fd 3 and writes replies on fd 4.
        proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=lambda: (os.dup2(to_chrome_r, 3), os.dup2(from_chrome_w, 4)),
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        pipe = _Pipe(to_chrome_w, from_chrome_r)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
                pipe.send(domain, session=session)
            pipe.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
            pipe.send("Page.navigate", {"url": Path(page).resolve().as_uri()}, session=session)
            pipe.wait_for("Page.loadEventFired")
            title = pipe.send("Runtime.evaluate", {"expression": "document.title", "returnByValue": True}, session=session)["result"]["value"]
            png = base64.b64decode(pipe.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"])
            errors = []
            for e in pipe.events:
                p = e.get("params", {})
                if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    errors.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
                elif e.get("method") == "Runtime.exceptionThrown":
                    errors.append("exception: " + p.get("exceptionDetails", {}).get("exception", {}).get("description", str(p)))
                elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    errors.append("log: " + p["entry"].get("text", "") + " " + p["entry"].get("url", ""))
            try:
                pipe.send("Browser.close", timeout=5)
            except (RuntimeError, TimeoutError):
                pass
            return Render(png=png, title=title, errors=errors)
        finally:
            os.close(to_chrome_w)
            os.close(from_chrome_r)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def pixel_spread(png: bytes) -> tuple[float, float]:
    """(grey-level standard deviation, fraction of non-white pixels) of a screenshot."""
    import io

    import numpy as np
    from PIL import Image

    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return float(grey.std()), float((grey < 245).mean())
