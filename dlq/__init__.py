"""Dead letters you can see and bring back: `python -m dlq inspect | show | redrive`."""
