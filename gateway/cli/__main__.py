"""`python -m gateway.cli.main` runs the `ticketgate` command."""

from gateway.cli.main import main

raise SystemExit(main())
