"""Tools that make the things ticketgate talks to fail, for the fault tests."""
