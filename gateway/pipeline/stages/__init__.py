"""The processing stages, one module each; their order is the table in processor.py."""
