"""``workbench trace``: trace a Lean project's own source files with the Pantograph that mines them."""
