"""Documents rendered from issued data: invoice PDFs (WeasyPrint)."""
