# SPDX-License-Identifier: Apache-2.0
from audio_vision.cli import main

raise SystemExit(main())
