"""`python -m birdcore` → the CLI."""

from birdcore.cli import main

raise SystemExit(main())
