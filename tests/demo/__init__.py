"""Tests of the demo city loaded by `flask demo load`."""
