from audio_vision.cli import main

raise SystemExit(main())
