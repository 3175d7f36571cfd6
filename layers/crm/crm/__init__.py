"""Lead management domain layer: rules, models, data access and HTTP plumbing shared by the functions."""
