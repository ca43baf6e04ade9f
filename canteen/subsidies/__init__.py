"""Subsidy policies: per district, versioned by validity dates, with rules per category and meal slot."""
