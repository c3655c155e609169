"""``python -m shardstream.cli``: the command line (also what ``torchrun -m shardstream.cli`` runs)."""

from . import main

raise SystemExit(main())
