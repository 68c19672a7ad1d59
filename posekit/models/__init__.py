"""Model families: thin estimators that pair a network with its pre-processing and decoder."""
