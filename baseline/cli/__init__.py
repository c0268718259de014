"""Command-line interface: ``baseline synth|run|evaluate|train``."""
