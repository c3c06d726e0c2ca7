"""The pasar User-Service: accounts, tokens, signing keys and the notification inbox."""
