"""Storage bindings: the ``connection`` setting, binding expressions, and blob/table inputs and
queue/blob/table outputs read and written in Azure Storage as the host's storage extensions do."""
