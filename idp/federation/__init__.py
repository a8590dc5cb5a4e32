"""Upstream identity providers behind one Connector interface."""
