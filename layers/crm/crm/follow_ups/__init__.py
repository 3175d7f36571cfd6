"""Follow-ups: automatic follow-up tasks, task reminders and the speed-to-lead SLA."""
