"""Code every mailpulse process uses. Import order matters: see shared.bootstrap."""

__version__ = "0.1.0"
