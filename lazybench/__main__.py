from lazybench._cli import main

raise SystemExit(main())
