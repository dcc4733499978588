"""The tests, in tiers that mirror the packages: unit, integration, e2e (see the Makefile's test targets)."""
