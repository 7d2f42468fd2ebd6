"""rawcv's built-in pipelines, one YAML file each.

This folder is installed as the package data ``rawcv.pipelines`` (see ``pyproject.toml``) and read
through :mod:`importlib.resources`, so a wheel finds the same pipelines as a checkout.
"""
