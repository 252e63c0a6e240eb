"""A step whose packages_to_install names a package no index has: its environment cannot be
built, and the error must say why and where the installer's whole output is."""
from kfp import dsl


@dsl.component(base_image="python:3.11", packages_to_install=["kfbox-test-no-such-package==1.0"])
def needs_nothing_real():
    print("never runs")


@dsl.pipeline(name="missing-package")
def pipeline():
    needs_nothing_real()
