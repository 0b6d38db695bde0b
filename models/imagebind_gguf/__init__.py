"""Helpers of models/convert.py: checkpoint reading, architecture, GGUF writing."""
