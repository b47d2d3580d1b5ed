from edgeorder.cli import main

raise SystemExit(main())
