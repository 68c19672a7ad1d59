"""Model weights: the zoo registry (every model declared once), npm download, integrity checks, cache."""
