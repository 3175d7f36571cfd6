"""Staff notifications: jobs, the emails they become, delivery at most once, SES events as activities."""
