"""`python -m omnitron_sandbox`: the sandbox's command line (see `server.main`)."""

from .server import main

raise SystemExit(main())
