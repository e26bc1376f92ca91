"""The daemon: its composition root (`main.py`), worker processes, the scheduler and wake-ups."""
