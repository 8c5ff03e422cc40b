from setuptools import find_packages, setup

# find: in setup.cfg lists crossmodal and its subpackages; the two data-only packages mapped from
# experiments/ (package_dir in setup.cfg) are added here, since find cannot see them.
setup(packages=find_packages(include=["crossmodal", "crossmodal.*"]) + ["crossmodal._configs", "crossmodal._sweeps"])
