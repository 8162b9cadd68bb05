"""Admin actions on signed invoice links: rotating an invoice's link version."""
