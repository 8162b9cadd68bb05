"""EN 16931 e-invoices generated from frozen invoices: UBL (Peppol, XRechnung), CII, Factur-X."""
