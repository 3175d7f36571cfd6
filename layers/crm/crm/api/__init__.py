"""HTTP routes, grouped by the function that serves them. Each module has `build_router()`.

Routers are built by a factory, not held at module level, because Powertools binds a router to the
resolver that includes it: the docs function and each API function need their own instances.
"""
