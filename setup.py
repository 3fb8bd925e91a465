"""The one compiled part: the simulator's strike loop (everything else is in pyproject.toml)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "raid.simulation._strikeloop",
            ["raid/simulation/_strikeloop.c"],
            # the same float roundings as the Python expressions: no fused multiply-add
            extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math"],
        )
    ]
)
