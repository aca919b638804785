"""The replay tool: NYC TLC trip-record parquet files into the collector."""

__version__ = "0.1.0"
