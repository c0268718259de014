"""Map context from OpenStreetMap: roads, carriageways, kerbs, car parks, buildings.

It sits at the bottom of the package with ``core``: the renderer draws from it
and ``classify`` decides on-road versus parked from it; neither depends on the
other.
"""
