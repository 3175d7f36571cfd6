"""The lead aggregate: the model and its rules, its repository, list-index keys, who may see or change it,
the tasks under it, conditions on its fields, and `LeadChange` (a change read from the stream)."""
