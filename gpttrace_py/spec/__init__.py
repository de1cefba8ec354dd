"""The program spec (the contract) and its expression grammar."""

from .expr import ExprError
from .model import Aggregate, Filter, Lhist, OutputField, ProbeRef, ProgramSpec, Saved, Start, parse_probe

__all__ = ["Aggregate", "ExprError", "Filter", "Lhist", "OutputField", "ProbeRef", "ProgramSpec", "Saved", "Start",
           "parse_probe"]
