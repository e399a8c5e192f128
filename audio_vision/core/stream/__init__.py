# SPDX-License-Identifier: Apache-2.0
"""Live and recorded streams: message fields (the one message codec) and analysis-window assembly."""
