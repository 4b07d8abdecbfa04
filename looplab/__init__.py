"""looplab: human-in-the-loop machine learning in production, in one package."""

__version__ = "0.1.0"
