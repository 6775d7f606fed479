"""`python -m rag_attrib` runs the CLI."""

from rag_attrib.cli import main

raise SystemExit(main())
