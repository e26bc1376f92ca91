"""The `ticketgate` command: `main.py` parses the arguments and registers one module per command group."""
