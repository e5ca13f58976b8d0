"""Configuration of edumatrix-db: the service catalog, stack settings and naming rules.

Pure Python and plain data: nothing in this package declares a Pulumi resource or opens a connection.
"""
