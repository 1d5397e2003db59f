"""File sinks that take Arrow batches whole (JSON lines, CSV)."""
