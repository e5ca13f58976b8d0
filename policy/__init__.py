"""The edumatrix-db CrossGuard policy pack: validators grouped by concern, listed in `policy.pack`."""
