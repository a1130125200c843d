"""Verifier backends: the plug-in boundary, the registry, and the backends themselves."""
