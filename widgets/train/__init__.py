"""The Train tab's views: the launcher, its live chart, run insight and export."""
