"""The demo city: a Xining-like city loaded by `flask demo load` for trying canteen out."""
