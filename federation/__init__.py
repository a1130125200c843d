"""rats-federation."""
