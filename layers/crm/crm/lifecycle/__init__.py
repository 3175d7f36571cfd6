"""The lead's lifecycle: status transitions, edits, qualification (BANT) and the task service."""
