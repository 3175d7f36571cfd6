"""Integrations: what the rest of a company's tools hear from LeadFlow (domain events on EventBridge,
signed outbound webhooks)."""
