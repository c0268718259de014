"""Print ``report.html`` to ``report.pdf`` with headless Chromium, when it is installed.

The PDF is a convenience: a missing browser, a crash or a timeout is logged and
returns None, and never fails the run. The page is printed with its own print
stylesheet (A4, no browser header or footer) and written atomically.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from baseline.core.atomic import atomic_path

log = logging.getLogger(__name__)

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    """Path of a Chromium-family browser: ``$CITYBASELINE_CHROMIUM`` or the first on PATH."""
    configured = os.environ.get("CITYBASELINE_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def write_report_pdf(
    html_path: str | Path, *, chromium: str | None = None, timeout_s: float = 120.0
) -> Path | None:
    """Print ``html_path`` to a PDF beside it (same stem); return its path, or None.

    None means no PDF was made (no browser, or printing failed); the reason is
    logged at WARNING. An existing PDF is only replaced by a complete new one.
    """
    html_path = Path(html_path).resolve()
    browser = chromium or find_chromium()
    if browser is None:
        log.warning("no Chromium found; skipping %s", html_path.with_suffix(".pdf").name)
        return None
    pdf_path = html_path.with_suffix(".pdf")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="citybaseline-chromium-") as profile,
            atomic_path(pdf_path) as tmp,
        ):
            command = [
                browser, "--headless=new", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", f"--user-data-dir={profile}",
                "--no-pdf-header-footer", f"--print-to-pdf={tmp}", html_path.as_uri(),
            ]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                command.insert(1, "--no-sandbox")  # Chromium refuses to sandbox as root
            result = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
            if result.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
                tail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
                raise RuntimeError(f"exit code {result.returncode}: {' | '.join(tail)}")
            if not tmp.read_bytes()[:5] == b"%PDF-":
                raise RuntimeError("Chromium wrote something that is not a PDF")
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        log.warning("could not print %s to PDF: %s", html_path.name, exc)
        return None
    return pdf_path
