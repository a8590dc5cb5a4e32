"""The demo relying party for the seeded client acme-portal-001 (`make demo`)."""
