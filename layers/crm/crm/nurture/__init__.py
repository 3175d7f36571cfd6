"""Nurture: sequences, enrollment, the step mailer, one-click unsubscribe and do-not-email."""
