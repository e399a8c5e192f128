# SPDX-License-Identifier: Apache-2.0
"""The one exception of the bag layer."""


class BagError(Exception):
    """A bag that cannot be used as asked (missing, corrupt, empty, unknown types, missing topics).

    The message is one line meant for the user; CLI commands turn it into ``UserError``.
    """
