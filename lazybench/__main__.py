from lazybench.cli import main

raise SystemExit(main())
