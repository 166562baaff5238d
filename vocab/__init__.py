"""The shared vocabulary at the bottom of lrsweep: names every layer agrees on, importing nothing.

``strategies``, ``trainables``, ``sweeps`` and ``reports`` all import from here and nothing here
imports them, so no import runs back up the layering (see docs/CONTRACTS.md).
"""
