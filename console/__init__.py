"""What the images share: settings as flags and help text, plain-text tables, JSON log lines and
the one text form of a timestamp."""
