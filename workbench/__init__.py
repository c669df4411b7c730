"""Research workbench for training an energy-based value model for Lean 4 proof search."""
__version__ = "0.1.0"
