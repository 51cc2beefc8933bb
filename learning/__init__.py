"""Learning rules that act on a chip only through read, settle and pulse.

Nothing in this package may read or write a conductance array; see
``tests/test_boundary.py``.
"""
