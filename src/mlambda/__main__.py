from mlambda.cli import main

raise SystemExit(main())
