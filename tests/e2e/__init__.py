"""`python -m runner` in a subprocess, end to end (most are marked slow), and the kind cluster test (marked kind)."""
