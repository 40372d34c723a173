"""A small shop backend with known, seeded problems (bench/analyze.py checks analyze finds them)."""
