"""rereel: neural reinterpretation of film."""

__version__ = "0.1.0"
