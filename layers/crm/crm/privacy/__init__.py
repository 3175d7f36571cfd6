"""A person's data on request: erasure that reaches every copy, export, suppression, audit."""
