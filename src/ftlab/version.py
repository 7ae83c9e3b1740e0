"""ftlab's version (`ftlab --version`; the HTML report records it)."""

__version__ = "0.1.0"
