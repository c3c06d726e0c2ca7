"""The pasar storefront and admin: HTML pages over the users, products and orders APIs.

It owns no database: a shopper's state is the encrypted session cookie (tokens, cart,
CSRF secret) and, for a signed-in shopper, the cart saved by the Order-Service.
"""
