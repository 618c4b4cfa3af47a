"""The Template tab's views: the template editor and per-token losses."""
