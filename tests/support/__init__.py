"""Real servers and real processes for the tests (never mocks)."""
