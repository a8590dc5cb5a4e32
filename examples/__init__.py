"""Example programs that use Authy2 (not part of the idp package)."""
