"""Activity functions of the custom-status sample, one module per activity."""
