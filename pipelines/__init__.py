"""forcebeam package."""
