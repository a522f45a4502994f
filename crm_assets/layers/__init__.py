"""The warehouse layers in dependency order: raw -> enriched -> features -> lifecycle -> rfmt -> reporting.

Each module holds a layer's SQL, its plain ``build_*`` functions, its checks
and its thin Dagster assets. Layers import ``core`` and earlier layers only.
"""
