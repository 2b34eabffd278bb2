"""Where a function's code comes from and the shapes it arrives in."""
