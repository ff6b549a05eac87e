"""dataeff: experiments on overcoming the data bottleneck of language models."""

__version__ = "0.1.0"
