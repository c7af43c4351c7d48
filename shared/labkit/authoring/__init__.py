"""Tools for lab authors and instructors: metadata, exercises, lint, catalog, grading.

Run through `python -m labkit.authoring <command>` (the Makefile's targets).
"""
