"""Users (reps, managers, admins), their teams and hours, and the directory that gives callers their teams."""
