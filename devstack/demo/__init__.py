"""`make demo`: the whole system on one machine, end to end."""
