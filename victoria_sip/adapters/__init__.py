"""Adapters: one module (or small package) per outside thing, implementing the domain's ports."""
