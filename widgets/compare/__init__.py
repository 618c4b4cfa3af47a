"""The Compare tab's views: the chat comparator, batch comparison, preferences."""
