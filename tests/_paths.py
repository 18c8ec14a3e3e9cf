"""Paths the tests read: the checkout's root and the tests' own fixture files."""

from pathlib import Path

#: The tests folder (helper modules such as _cli.py live here).
TESTS = Path(__file__).resolve().parent
#: The root of the checkout (README.md, docs/, configs/, scripts/, benchmarks/).
ROOT = TESTS.parent
#: Recorded files the tests compare against (the demo golden).
FIXTURES = TESTS / "fixtures"
