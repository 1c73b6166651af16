"""`python -m birdcore` → the CLI."""

from .cli import main

raise SystemExit(main())
