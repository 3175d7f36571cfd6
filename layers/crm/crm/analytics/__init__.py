"""Analytics: funnel, sources and speed-to-lead counters kept from lead changes, and the nightly reconciliation."""
