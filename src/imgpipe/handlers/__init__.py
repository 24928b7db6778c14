"""Thin Lambda entry points: parse, delegate, shape the response."""
