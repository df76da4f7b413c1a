"""Installs the nasbench package (``pip install -e .``)."""
from setuptools import find_packages, setup


def _requirements():
    with open("requirements.txt") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")
                and not line.startswith("pytest")]


setup(
    name="nasbench",
    version="0.1.0",
    description="Neural architecture search research framework: BCNet, BN-NAS, BossNAS, BNAS-v2, NCP",
    packages=find_packages(include=["nasbench", "nasbench.*"]),
    package_data={"nasbench": ["*.yaml"]},
    python_requires=">=3.10",
    install_requires=_requirements(),
)
