"""connhub: one connections service, three API faces."""
