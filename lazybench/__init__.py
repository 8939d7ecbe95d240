"""lazybench: what lazy evaluation costs when memory protection does the checking."""

__version__ = "0.1.0"
