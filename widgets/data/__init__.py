"""The Data tab's views: the dataset browser, its loader and row editor, growing data."""
