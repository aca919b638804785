"""The event collector: validate, wrap in an envelope, publish to Kafka."""

__version__ = "0.1.0"
