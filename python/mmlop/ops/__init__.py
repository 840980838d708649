"""Fused ops: each module holds a pure-torch reference, a Triton autograd.Function and one dispatching
entry point."""
