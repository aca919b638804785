"""What the command-line tools share: settings as flags and help text, plain-text tables."""
