"""Rendering: history and bisection results as terminal text and JSON. Imports only `model`."""
