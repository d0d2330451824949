"""The fuzz suite of issue 10 (see conftest.py)."""
