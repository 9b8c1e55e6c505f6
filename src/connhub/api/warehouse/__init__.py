"""The Warehouse connection API face (API.md section 1); ``endpoints.install(app)`` mounts it."""
