"""Usage: consumptions (usage records) and quotas."""
