"""Tasks: how texts become feeds, and how outputs become task metrics."""
