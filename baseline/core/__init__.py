"""Shared types and helpers at the bottom of the package; they import no stage."""
