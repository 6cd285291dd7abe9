"""servegym: SLO-constrained LLM serving capacity planning as a benchmark."""

__version__ = "0.1.0"
