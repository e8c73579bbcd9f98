"""What admins do to the running system: dead letters, retries, emergency stops."""
