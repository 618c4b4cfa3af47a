"""`python -m workbench.demo --rows N --seed S --out PATH` writes a demo dataset."""

from .tasks import main

raise SystemExit(main())
