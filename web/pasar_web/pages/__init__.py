"""The storefront's pages, one module per part of the shop; ``admin`` for the owner."""
