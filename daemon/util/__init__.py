"""Small pure helpers every room uses: time, text, tables, money, network addresses.

Owns no state and imports nothing of watchkeeper's; anything bigger than a helper belongs in a
room of its own.
"""
