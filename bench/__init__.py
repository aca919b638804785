"""The side-by-side benchmark behind `make bench`; results in bench/results.md."""
