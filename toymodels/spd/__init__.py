"""Stochastic Parameter Decomposition (SPD; Bushnaq et al. 2025) of the toy models."""
