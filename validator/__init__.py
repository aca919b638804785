"""Raw events checked against their contracts, exactly once, into validated topics."""
