"""Data shipped with the package: the built-in baseline of known deviations."""
