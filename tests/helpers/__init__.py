"""The tests' helpers, one module per concern, each imported from its own module."""
