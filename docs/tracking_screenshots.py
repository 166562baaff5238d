"""The README's screenshots of TensorBoard's and MLflow's own UIs showing a sweep's runs: each UI is
served on 127.0.0.1 from the sweep's tracker files and captured with Debian's headless chromium,
driven by Playwright (no `playwright install`, as in tests/test_report_browser.py).

    python docs/tracking_screenshots.py TENSORBOARD_LOGDIR MLFLOW_SQLITE_FILE [--out docs]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SIZE = {"width": 1500, "height": 900}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(command: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise RuntimeError(f"{command[0]} did not listen on 127.0.0.1:{port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir")
    parser.add_argument("mlflow_db")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    bin_dir = Path(sys.executable).parent
    tb_port, ml_port = free_port(), free_port()
    servers = [
        serve([str(bin_dir / "tensorboard"), "--logdir", args.logdir, "--host", "127.0.0.1", "--port", str(tb_port)],
              tb_port),
        serve([str(bin_dir / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{os.path.abspath(args.mlflow_db)}",
               "--host", "127.0.0.1", "--port", str(ml_port), "--workers", "1"], ml_port),
    ]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport=SIZE)
            page.goto(f"http://127.0.0.1:{tb_port}/?darkMode=false#scalars&tagFilter=^(val|test)_accuracy$")
            page.wait_for_timeout(8000)
            page.screenshot(path=f"{args.out}/tracking-tensorboard.png")
            page.goto(f"http://127.0.0.1:{ml_port}/#/experiments/1/runs")
            page.wait_for_selector("[role='gridcell'] button", timeout=120000)
            page.wait_for_timeout(2000)
            close = page.locator("[aria-label='Close']")
            if close.count():
                close.first.click()  # the assistant's side panel
            page.locator("[role='gridcell'] button").first.click()  # unfold the sweep's parent run
            page.wait_for_timeout(1500)
            page.mouse.click(296, 120)  # the second of the view buttons (list, chart, table): the chart view
            page.wait_for_timeout(1500)
            page.get_by_placeholder("Search metric charts").fill("accuracy")
            page.wait_for_selector(".js-plotly-plot .scatterlayer .trace", timeout=120000)  # curves drawn
            page.wait_for_timeout(3000)
            page.screenshot(path=f"{args.out}/tracking-mlflow.png")
            browser.close()
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
    print(f"{args.out}/tracking-tensorboard.png, {args.out}/tracking-mlflow.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
