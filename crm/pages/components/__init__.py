"""Widgets the pages compose: the workspace of a tab, the call panel, the borrower card."""
