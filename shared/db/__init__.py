"""PostgreSQL: the message log, templates, rules, runtime settings and sender state."""
