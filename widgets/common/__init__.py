"""What every view shares: notices, buttons, the figure widget, theme, forms, text."""
