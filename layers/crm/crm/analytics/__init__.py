"""Analytics: funnel, sources and speed-to-lead counters kept from lead changes; nightly reconciliation."""
