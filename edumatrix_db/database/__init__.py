"""In the database: the SQL renderer of the access model, the catalog read-back, tenant isolation and the
local PostgreSQL server."""
