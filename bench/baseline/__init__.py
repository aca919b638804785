"""Baseline apps the collector is measured against; kept as they were, not as we would write them."""
