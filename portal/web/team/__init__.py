"""Team page and invitation links."""
