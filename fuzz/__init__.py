"""Fuzz targets for every parser of untrusted input (atheris, or the built-in mutator); see _harness.py."""
