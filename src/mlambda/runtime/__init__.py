"""Code that runs inside instance processes. Imports the standard library and msgspec only."""
