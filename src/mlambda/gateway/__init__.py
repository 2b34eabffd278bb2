"""The HTTP gateway: Starlette routes, auth, limits and the error mapping."""
