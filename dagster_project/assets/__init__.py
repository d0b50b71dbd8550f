"""Asset groups of the observance pipeline; each module is one group."""
