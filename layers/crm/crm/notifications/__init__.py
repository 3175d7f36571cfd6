"""Notifications to staff: jobs, the emails they become, delivery at most once, SES events back as activities."""
