"""Model families: thin estimators pairing a zoo network with its pre-processing and decoder.

One module per family; each declares its estimators with `posekit.estimators.registry.register`.
"""
