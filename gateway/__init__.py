"""ticketgate: an email-to-ticket gateway for a support desk."""

__version__ = "0.1.0"
