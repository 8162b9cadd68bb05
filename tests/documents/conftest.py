"""Helpers to read PDFs with poppler-utils (pdftotext, pdfinfo)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

if shutil.which("pdftotext") is None:
    pytest.skip("poppler-utils (pdftotext) is not installed", allow_module_level=True)


def pdf_text(pdf: bytes, tmp_path: Path, *, layout: bool = False) -> str:
    """The text of a PDF, page by page separated by form feeds."""
    path = tmp_path / "document.pdf"
    path.write_bytes(pdf)
    args = ["pdftotext", "-enc", "UTF-8", *(["-layout"] if layout else []), str(path), "-"]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def pdf_pages(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "count.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True)
    return int(
        next(line for line in info.stdout.splitlines() if line.startswith("Pages:")).split()[1]
    )


from tests.documents.conftest_einvoice import einvoice_seller_, scenario  # noqa: E402, F401
