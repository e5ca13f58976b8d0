"""Pulumi components of edumatrix-db: one ComponentResource per concern, one file each."""
