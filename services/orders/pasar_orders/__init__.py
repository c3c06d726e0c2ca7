"""The pasar Order-Service: placement saga, status tracking, notifications, payments."""
