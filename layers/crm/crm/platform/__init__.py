"""Plumbing every context shares and no business rule: AWS clients, DynamoDB (one retryable set, one
marshalling), clock, settings, errors and their HTTP mapping, queues, batches, email, cursors, signing keys,
idempotency, ids, working hours, the due-work scheduler and its checkpoints."""
